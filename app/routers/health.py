from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from app import metrics
from app.dependencies import ModelsDep
from app.errors import envelope

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every configured model loaded",
    operation_id="readyz",
    responses={503: {"description": "Some configured model is not loaded"}},
)
async def readyz(models: ModelsDep) -> JSONResponse:
    """200 when every configured model has a version loaded, else 503 naming the missing ones."""
    missing = models.missing()
    if missing:
        details = [{"path": name, "message": "not loaded"} for name in missing]
        return envelope(503, "not_ready", f"models not loaded: {', '.join(missing)}", details)
    return JSONResponse({"status": "ready", "models": {s.name: s.version for s in models.all()}})


@router.get("/metrics", summary="Prometheus metrics", operation_id="metrics", include_in_schema=True)
def prometheus_metrics() -> Response:
    """Prometheus text exposition."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
