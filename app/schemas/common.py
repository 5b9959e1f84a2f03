"""Shapes shared by every scoring route."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

RecordId = str | int | None
ApiRecord = dict[str, Any]


def integral(value: Any) -> Any:
    """3.0 as 3: in JSON Schema a number without a fraction is an integer, so a client may send either."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as the OpenAPI document says one (`"type": "integer"`): 3 or 3.0, never "3", true or 3.5. Bounds of
# a member of a union go before the BeforeValidator (see leads.RankRequest.top_k).
JsonInt = Annotated[StrictInt, BeforeValidator(integral)]


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


class ScoringRequest(BaseModel):
    """What every scoring body may carry besides its records. Options a route does not know are a 422 (a
    misspelled `explian` must not pass silently)."""

    model_config = ConfigDict(extra="forbid")

    line: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The line whose model scores (GET /v1/models lists each model's use case and line); "
        "absent: the use case's default line.",
    )
    strict: bool = Field(
        default=False,
        strict=True,
        description="true: a field the model does not know is a 422 naming it, instead of being listed in "
        "the result's unknown_fields.",
    )


class RecordCheck(BaseModel):
    """What the model could not use in the record it scored."""

    unknown_fields: list[str] = Field(
        description="Fields of the record the model does not know (ignored), e.g. a column under its data "
        "set's name instead of its API name."
    )
    missing_fields: list[str] = Field(
        description="The model's fields that were absent or null: scored as missing values."
    )
