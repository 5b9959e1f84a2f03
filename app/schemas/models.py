"""GET /v1/models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ServedModel(BaseModel):
    name: str
    version: int
    alias: str
    loaded_at: datetime
    description: str = ""
    holdout_metrics: dict[str, float] = Field(description="Figures on the fixed holdout (EVALUATION.md)")
    features: list[dict[str, Any]] = Field(description="The feature contract: API fields, kinds, categories")
    settings: dict[str, Any] = Field(description="Thresholds, grades and the like stored with the version")


class ModelsResponse(BaseModel):
    models: list[ServedModel]
