from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from app import metrics
from app.dependencies import ModelsDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness", operation_id="healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every configured model loaded",
    operation_id="readyz",
    responses={503: {"description": "Some configured model is not loaded"}},
)
def readyz(models: ModelsDep) -> JSONResponse:
    """200 when every configured model has a version loaded, else 503 naming the missing ones."""
    loaded = {s.name: s.version for s in models.all()}
    missing = models.missing()
    if missing:
        return JSONResponse(
            status_code=503,
            content={
                "error": {
                    "code": "not_ready",
                    "message": f"models not loaded: {', '.join(missing)}",
                    "details": [{"path": name, "message": "not loaded"} for name in missing],
                }
            },
        )
    return JSONResponse({"status": "ready", "models": loaded})


@router.get("/metrics", summary="Prometheus metrics", operation_id="metrics", include_in_schema=True)
def prometheus_metrics() -> Response:
    """Prometheus text exposition."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
