"""GET /v1/models/{name}/drift."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["stable", "watch", "act", "no data"]


class Distribution(BaseModel):
    psi: float | None = Field(
        description="Population stability index against the reference; null: no records"
    )
    status: Status = Field(description="stable below the watch threshold, watch, act at or above act")
    bins: list[str] = Field(description="The bins: numeric ranges or categories, then other/missing")
    reference: list[float] = Field(description="Share of the reference rows in each bin")
    current: list[float] = Field(description="Share of the window's sampled records in each bin")


class FieldDrift(Distribution):
    field: str
    kind: Literal["numeric", "categorical"]


class Thresholds(BaseModel):
    watch: float
    act: float


class DriftResponse(BaseModel):
    model: str
    version: int = Field(description="The served version; its sampled records against its reference profile")
    since: datetime
    until: datetime
    records: int = Field(description="Sampled records of the version scored in the window")
    reference_rows: int = Field(description="Training rows the reference profile was made from")
    thresholds: Thresholds
    share_drifting: float | None = Field(description="Share of the fields at or above the watch threshold")
    score: Distribution = Field(description="The scores served against the validation rows' scores")
    fields: list[FieldDrift] = Field(description="Every field the model reads, highest PSI first")
    request_id: str
