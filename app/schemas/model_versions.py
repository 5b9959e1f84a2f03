"""GET /v1/models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class OtherVersion(BaseModel):
    """Another version an alias points to, e.g. the challenger."""

    version: int
    alias: str
    loaded_at: datetime | None = Field(
        description="When this worker loaded it; null when it is only known from the registry (not shadowed)"
    )
    holdout_metrics: dict[str, float] = Field(description="Figures on the fixed holdout (EVALUATION.md)")


class RefusedVersion(BaseModel):
    """A version an alias points to that this worker refused to serve (it failed to load or its check)."""

    version: int
    alias: str
    reason: str
    at: datetime


class ServedModel(BaseModel):
    name: str
    version: int
    alias: str
    use_case: str = Field(description="The use case it scores: churn, leads, products, diagnosis")
    line: str | None = Field(
        description="The line of the use case it serves: the `line` a scoring body names; null for the "
        "default line (bodies without `line`)"
    )
    loaded_at: datetime
    description: str = ""
    holdout_metrics: dict[str, float] = Field(description="Figures on the fixed holdout (EVALUATION.md)")
    features: list[dict[str, Any]] = Field(description="The feature contract: API fields, kinds, categories")
    settings: dict[str, Any] = Field(description="Thresholds, grades and the like stored with the version")
    challenger: OtherVersion | None = Field(
        default=None, description="The challenger, when the registry has one: a candidate for champion"
    )
    refused: list[RefusedVersion] = Field(
        default_factory=list, description="Versions the aliases point to that this worker refused to serve"
    )


class ModelsResponse(BaseModel):
    models: list[ServedModel]
