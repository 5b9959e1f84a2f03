"""POST /v1/outcomes and GET /v1/models/{name}/performance."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from app.schemas.common import JsonInt
from app.text import NO_NUL, storable

OutcomeEvent = Literal["customer_churned", "lead_converted", "offer_accepted"]
# The field that qualifies each event: which product was offered, which lead line the lead came from.
QUALIFIER = {"offer_accepted": "product", "lead_converted": "line"}
# Lengths of the outcomes table's columns (item, record_id); NUL and lone surrogates no database holds. Taken as
# sent (a product or line is one of the served names, listed in the OpenAPI document: nothing to trim).
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(storable),  # says why NUL is refused; the document says it with a pattern
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL}),
]
RECORD_ID_LENGTH = 128
# The document's `format: date-time` (RFC 3339, with its offset): pydantic alone also reads a number, or a
# string of one, as seconds since 1970, and a date-time without seconds.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def rfc3339(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError("must be an RFC 3339 date-time with a time zone, e.g. 2026-03-01T10:00:00Z")


def in_utc(value: datetime) -> datetime:
    """The time in UTC, as the database stores it; one that has none (year 1 east of UTC) is refused."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


_RECORD_ID_TEXT = {"type": "string", "minLength": 1, "maxLength": RECORD_ID_LENGTH, "pattern": NO_NUL}


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: OutcomeEvent = Field(
        description="customer_churned (scored by clm-churn), lead_converted (clm-leads-<line>), offer_accepted "
        "(clm-products)."
    )
    record_id: JsonInt | Annotated[str, WithJsonSchema(_RECORD_ID_TEXT)] = Field(
        description="The ID the record was scored under: customer_id, lead_number, contact_id."
    )
    happened: bool = Field(
        default=True, strict=True, description="false records that it did not happen (renewed, declined)."
    )
    product: Name | None = Field(
        default=None, validate_default=True, description="offer_accepted: the product."
    )
    line: Name | None = Field(
        default=None, validate_default=True, description="lead_converted: the lead line."
    )
    observed_at: Annotated[AwareDatetime, BeforeValidator(rfc3339)] | None = Field(
        default=None,
        description="When it happened, with a time zone; default now. Scores served after it are not counted "
        "as predictions of it.",
    )

    @field_validator("record_id")
    @classmethod
    def _storable_id(cls, value: int | str) -> int | str:
        # Checked here, not by a constrained str in the union: a bad string is then one error at the field's
        # path, not one per member of the union.
        if isinstance(value, str):
            if not 1 <= len(value) <= RECORD_ID_LENGTH:
                raise ValueError(f"must be 1 to {RECORD_ID_LENGTH} characters")
            storable(value)
        return value

    @field_validator("product", "line")
    @classmethod
    def _qualifies_its_event(cls, value: str | None, info: ValidationInfo) -> str | None:
        event = info.data.get("event")
        if event is None:
            return value
        wanted = QUALIFIER.get(event)
        if info.field_name == wanted and value is None:
            raise ValueError(f"required for {event}")
        if info.field_name != wanted and value is not None:
            raise ValueError(f"not a field of {event}")
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The fields each event takes, as the validator above reads them: `product` with offer_accepted only,
        `line` with lead_converted only (null or absent elsewhere)."""
        schema = handler(core_schema)
        definition = handler.resolve_ref_schema(schema)
        definition["oneOf"] = [_event_shape(event, QUALIFIER.get(event)) for event in _EVENTS]
        return schema


_EVENTS: tuple[OutcomeEvent, ...] = ("customer_churned", "lead_converted", "offer_accepted")


def _event_shape(event: str, qualifier: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"event": {"const": event}}
    for field in QUALIFIER.values():
        properties[field] = {"type": "string"} if field == qualifier else {"type": "null"}
    return {"properties": properties, "required": ["event", *([qualifier] if qualifier else [])]}


class OutcomesRequest(BaseModel):
    outcomes: list[OutcomeIn] = Field(
        min_length=1,
        examples=[
            [
                {
                    "event": "customer_churned",
                    "record_id": "7590-VHVEG",
                    "observed_at": "2026-03-01T00:00:00Z",
                },
                {
                    "event": "offer_accepted",
                    "record_id": "5575-GNVDE",
                    "product": "tech_support",
                    "happened": False,
                },
                {"event": "lead_converted", "record_id": 660737, "line": "inbound"},
            ]
        ],
    )


class OutcomesResponse(BaseModel):
    recorded: int = Field(description="New facts stored.")
    unchanged: int = Field(description="Facts already stored as sent (a repeat is a no-op).")
    corrected: int = Field(
        description="Stored facts replaced: a different `happened` or `observed_at` was sent."
    )
    request_id: str


class GroupPerformance(BaseModel):
    group: str
    records: int
    positives: int
    positive_rate: float
    lift: float | None = Field(description="positive_rate over the version's overall rate.")


class VersionPerformance(BaseModel):
    version: int
    records: int = Field(description="Scored records with a recorded outcome (each record's last score).")
    positives: int
    positive_rate: float | None
    roc_auc: float | None = Field(description="Realised ROC AUC; null until both outcomes occur.")
    top_decile_lift: float | None = Field(
        description="Positive rate of the 10 % highest scores over the overall."
    )
    by_label: list[GroupPerformance] = Field(description="By the grade or risk level served, best first.")
    by_item: list[GroupPerformance] = Field(description="By product, for models that score several.")


class PerformanceResponse(BaseModel):
    model: str
    event: OutcomeEvent
    versions: list[VersionPerformance]
    request_id: str
