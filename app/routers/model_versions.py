from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth import ScoreScope
from app.dependencies import ModelsDep
from app.error_handlers import error_response_doc
from app.errors import NotFound
from app.schemas.model_versions import ModelsResponse
from app.scoring.runtime.served import describe_served, record_schema_of

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[ScoreScope])


@router.get(
    "",
    response_model=ModelsResponse,
    summary="Every served model: champion and challenger versions, holdout figures and features",
    operation_id="list_models",
    responses={
        # Where a client goes next with a served model's name (and what Schemathesis' stateful phase follows).
        200: {
            "links": {
                operation: {"operationId": operation, "parameters": {"name": "$response.body#/models/0/name"}}
                for operation in ("model_record_schema", "model_performance", "reload_model")
            }
        },
        **error_response_doc(401, 403),
    },
)
def list_models(models: ModelsDep) -> dict[str, Any]:
    """What each configured model serves now."""
    return {"models": describe_served(models)}


@router.get(
    "/{name}/schema",
    summary="The JSON Schema of one record of a served model, from its feature contract",
    operation_id="model_record_schema",
    responses={
        200: {"description": "A JSON Schema (draft 2020-12)", "content": {"application/json": {}}},
        **error_response_doc(401, 403, 404, 422, 503),
    },
)
def model_record_schema(name: str, models: ModelsDep) -> dict[str, Any]:
    """Each field the served version reads: its type, the categories seen in training, what it means."""
    if name not in models.names:
        raise NotFound(f"{name} is not served here; served: {', '.join(models.names)}")
    return record_schema_of(models.get(name))
