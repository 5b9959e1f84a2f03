"""Model administration (admin scope): reload a model at once instead of waiting for the next poll."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth import AdminScope
from app.dependencies import ModelsDep
from app.error_handlers import error_response_doc
from app.schemas.admin import ReloadResponse

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminScope])


@router.post(
    "/models/{name}/reload",
    response_model=ReloadResponse,
    summary="Load what the served alias points to now and swap it in without dropping requests",
    operation_id="reload_model",
    responses=error_response_doc(401, 403, 404, 409, 422, 503),
)
def reload_model(name: str, models: ModelsDep) -> ReloadResponse:
    """Reload one model in the worker that takes the call; the others follow at their next poll."""
    reload = models.reload(name)
    scorer = reload.scorer
    return ReloadResponse(
        name=scorer.name,
        alias=scorer.alias,
        version=scorer.version,
        previous_version=reload.previous_version,
        changed=reload.previous_version != scorer.version,
        loaded_at=scorer.loaded_at,
    )
