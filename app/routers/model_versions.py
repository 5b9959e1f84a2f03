from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from app.auth import ScoreScope
from app.dependencies import DatabaseDep, ModelsDep, RequestIdDep, SettingsDep
from app.drift import drift_of, reference_of
from app.error_handlers import error_response_doc
from app.errors import NotFound
from app.schemas.drift import DriftResponse
from app.schemas.model_versions import ModelsResponse
from app.schemas.outcomes import in_utc, rfc3339
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
                for operation in ("model_record_schema", "model_performance", "model_drift", "reload_model")
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


@router.get(
    "/{name}/drift",
    response_model=DriftResponse,
    summary="Drift of a served model: each field's and the score's PSI against the version's reference",
    operation_id="model_drift",
    responses=error_response_doc(401, 403, 404, 422, 503),
)
async def model_drift(
    name: str,
    models: ModelsDep,
    database: DatabaseDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    since: Annotated[
        AwareDatetime | None,
        BeforeValidator(rfc3339),
        AfterValidator(in_utc),
        Query(
            description="Start of the window (RFC 3339 with a time zone); default: CLM_DRIFT_WINDOW_HOURS ago. "
            "The window ends now."
        ),
    ] = None,
) -> DriftResponse:
    """The served version's sampled records (CLM_DRIFT_SAMPLE_RATE of the records scored) of the window,
    field by field against the reference profile stored with the version at training: PSI, status
    (CLM_DRIFT_PSI_WATCH, CLM_DRIFT_PSI_ACT) and the shares per bin on both sides."""
    if name not in models.names:
        raise NotFound(f"{name} is not served here; served: {', '.join(models.names)}")
    scorer = models.get(name)
    reference_of(scorer.name, scorer.version, scorer.bundle)  # none: a 404 before the database is read
    until = datetime.now(UTC)
    start = since or until - timedelta(hours=settings.drift_window_hours)
    figures = await database.run(
        partial(
            drift_of,
            database,
            scorer.name,
            scorer.version,
            scorer.bundle,
            start,
            until,
            watch=settings.drift_psi_watch,
            act=settings.drift_psi_act,
        )
    )
    return DriftResponse.model_validate({**figures, "request_id": request_id})
