"""Shapes shared by every scoring route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

RecordId = str | int | None
ApiRecord = dict[str, Any]


class ErrorDetail(BaseModel):
    path: str = Field(description="Where the problem is, e.g. customers[3].tenure")
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(description="Machine-readable code, e.g. validation_error")
    message: str = Field(description="For a person")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorInfo


class ModelRef(BaseModel):
    """The exact registered version that scored."""

    name: str
    version: int
    alias: str


class Factor(BaseModel):
    """One reason: a field, the value the model saw (null when missing or unseen) and its signed log-odds impact."""

    feature: str
    value: Any
    impact: float


class ScoringResponse(BaseModel):
    model: ModelRef
    request_id: str
