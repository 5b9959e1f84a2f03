from __future__ import annotations

from fastapi import APIRouter

from app.auth import ScoreScope
from app.dependencies import ModelsDep
from app.errors import error_response_doc
from app.schemas.models import ModelsResponse, ServedModel

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[ScoreScope])

_NOT_SETTINGS = {"holdout", "check", "description", "use_case", "line"}


@router.get(
    "",
    response_model=ModelsResponse,
    summary="Every served model: champion and challenger versions, holdout figures and features",
    operation_id="list_models",
    responses=error_response_doc(401, 403),
)
def list_models(models: ModelsDep) -> ModelsResponse:
    """What each configured model serves now."""
    served = [
        ServedModel(
            name=s.name,
            version=s.version,
            alias=s.alias,
            loaded_at=s.loaded_at,
            description=s.metadata.get("description", ""),
            holdout_metrics={
                k: v for k, v in s.metadata.get("holdout", {}).items() if isinstance(v, int | float)
            },
            features=s.bundle.contract.to_dict()["features"],
            settings={k: v for k, v in s.metadata.items() if k not in _NOT_SETTINGS},
            challenger=models.challenger_info(s.name),
            refused=[vars(r) for r in models.refusals(s.name)],
        )
        for s in models.all()
    ]
    return ModelsResponse(models=served)
