from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from app import metrics
from app.dependencies import DatabaseDep, ModelsDep
from app.errors import DatabaseUnavailable
from app.schemas.health import Liveness, NotReady, Readiness
from app.scoring.runtime.loaded import LoadedModels

router = APIRouter(tags=["operations"])
# A readiness probe's own timeout is often 1 s: a database that hangs must not make the probe itself time out.
DATABASE_CHECK_SECONDS = 0.5


@router.get("/healthz", response_model=Liveness, summary="Liveness", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every configured model loaded",
    operation_id="readyz",
    response_model=Readiness,
    responses={503: {"model": NotReady, "description": "Some configured model is not loaded"}},
)
async def readyz(models: ModelsDep, database: DatabaseDep) -> JSONResponse:
    """200 when every configured model has a version loaded, else 503 naming the missing ones and why.

    The database's state is reported too, and does not decide readiness: scoring by fields needs no database."""
    try:
        state, message = await database.run(database.state, DATABASE_CHECK_SECONDS)
    except DatabaseUnavailable as exc:
        state, message = "unavailable", exc.message
    database_state = {"status": state, "message": message}
    missing = models.missing()
    if missing:
        details = [{"path": name, "message": _why_missing(models, name)} for name in missing]
        error = {
            "code": "not_ready",
            "message": f"models not loaded: {', '.join(missing)}",
            "details": details,
        }
        return JSONResponse({"error": error, "database": database_state}, status_code=503)
    return JSONResponse(
        {
            "status": "ready",
            "models": {s.name: s.version for s in models.all()},
            "database": database_state,
        }
    )


def _why_missing(models: LoadedModels, name: str) -> str:
    refusals = models.refusals(name)
    if not refusals:
        return "not loaded"
    return "; ".join(f"version {r.version} ({r.alias}) refused: it {r.reason}" for r in refusals)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    operation_id="metrics",
    # Documented as what it is, Prometheus' text exposition format (its content type carries a version).
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def prometheus_metrics() -> Response:
    """Prometheus text exposition."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
