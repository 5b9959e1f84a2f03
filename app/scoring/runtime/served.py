"""What GET /v1/models tells about each served model: versions, holdout figures, features and settings."""

from __future__ import annotations

from typing import Any

from app.scoring.runtime.loaded import LoadedModels

# Metadata shown elsewhere in the description, or only for the service's own use (the load check example).
_NOT_SETTINGS = {"holdout", "check", "description", "use_case", "line"}


def describe_served(models: LoadedModels) -> list[dict[str, Any]]:
    return [
        {
            "name": scorer.name,
            "version": scorer.version,
            "alias": scorer.alias,
            "loaded_at": scorer.loaded_at,
            "description": scorer.metadata.get("description", ""),
            "holdout_metrics": {
                k: v for k, v in scorer.metadata.get("holdout", {}).items() if isinstance(v, int | float)
            },
            "features": scorer.bundle.contract.to_dict()["features"],
            "settings": {k: v for k, v in scorer.metadata.items() if k not in _NOT_SETTINGS},
            "challenger": models.challenger_info(scorer.name),
            "refused": [vars(r) for r in models.refusals(scorer.name)],
        }
        for scorer in models.all()
    ]
