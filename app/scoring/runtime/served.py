"""What GET /v1/models tells about each served model: versions, holdout figures, features and settings."""

from __future__ import annotations

from typing import Any

from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.scorer import MAX_ID_LENGTH, Scorer
from model_registry.record_schema import record_schema

# Metadata shown elsewhere in the description, or only for the service's own use (the load check example).
_NOT_SETTINGS = {"holdout", "check", "description", "use_case", "line"}


def describe_served(models: LoadedModels) -> list[dict[str, Any]]:
    return [
        {
            "name": scorer.name,
            "version": scorer.version,
            "alias": scorer.alias,
            "use_case": scorer.metadata.get("use_case", scorer.name),
            "line": scorer.metadata.get("line"),
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


def record_schema_of(scorer: Scorer) -> dict[str, Any]:
    """The JSON Schema of one record of the served version, from its feature contract."""
    use_case, line = scorer.metadata.get("use_case", scorer.name), scorer.metadata.get("line")
    title = f"{scorer.name} version {scorer.version}: one {use_case} record" + (
        f", line {line}" if line else ""
    )
    return record_schema(scorer.bundle.contract, title, scorer.metadata.get("description", ""), MAX_ID_LENGTH)
