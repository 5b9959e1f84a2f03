from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth import ScoreScope
from app.dependencies import ModelsDep
from app.errors import error_response_doc
from app.schemas.models import ModelsResponse
from app.scoring.runtime.served import describe_served

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[ScoreScope])


@router.get(
    "",
    response_model=ModelsResponse,
    summary="Every served model: champion and challenger versions, holdout figures and features",
    operation_id="list_models",
    responses=error_response_doc(401, 403),
)
def list_models(models: ModelsDep) -> dict[str, Any]:
    """What each configured model serves now."""
    return {"models": describe_served(models)}
