"""POST /v1/value/score."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt
from pydantic.config import JsonDict

from app.schemas.common import RecordCheck, RecordId, ScoringRequest, ScoringResponse, integral
from app.scoring.runtime.scorer import MAX_ID_LENGTH
from app.text import NO_NUL

# A century of weeks: no summary of a real customer runs longer.
MAX_UNITS = 5200
MAX_AMOUNT = 1e9

# Strict: a JSON true is not the number 1.
Units = Annotated[float, Field(strict=True, ge=0, le=MAX_UNITS, allow_inf_nan=False)]
Money = Annotated[float, Field(strict=True, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]
SALE_OR_RETURN: JsonDict = {
    # What JSON Schema can say of the sign rule; the service checks it too, naming the path (a 422).
    "anyOf": [
        {"properties": {"amount": {"minimum": 0}, "is_return": {"const": False}}},
        {"properties": {"amount": {"maximum": 0}, "is_return": {"const": True}}, "required": ["is_return"]},
    ]
}
# A customer comes by id, by summary or by transactions: one of them, not null, must be there.
ONE_WAY_IN: JsonDict = {
    "anyOf": [
        {"required": ["customer_id"], "properties": {"customer_id": {"type": ["string", "integer"]}}},
        {
            "required": ["frequency", "recency", "t"],
            "properties": {name: {"type": "number"} for name in ("frequency", "recency", "t")},
        },
        {"required": ["transactions"], "properties": {"transactions": {"type": "array"}}},
    ]
}


class ValueTransaction(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=SALE_OR_RETURN)

    date: dt.date = Field(description="The day of the invoice line.")
    amount: float = Field(
        strict=True,
        ge=-MAX_AMOUNT,
        le=MAX_AMOUNT,
        allow_inf_nan=False,
        description="Quantity × unit price: positive for a sale; a return or cancellation is negative and "
        "carries `is_return: true` (a negative amount that is not a return is a 422).",
    )
    is_return: bool = Field(default=False, strict=True, description="A return or cancellation.")


class ValueCustomer(BaseModel):
    """A customer by id (its summary from the line's store), by its summary, or by its transactions."""

    model_config = ConfigDict(extra="allow", json_schema_extra=ONE_WAY_IN)

    customer_id: RecordId = Field(
        default=None,
        json_schema_extra={"maxLength": MAX_ID_LENGTH, "pattern": NO_NUL},
        description="A stored customer's id (its summary from the line's store), echoed in its result.",
    )
    # The bounds before the validator, as leads.RankRequest.top_k: else the document loses them.
    frequency: Annotated[StrictInt, Field(ge=0, le=MAX_UNITS), BeforeValidator(integral)] | None = Field(
        default=None, description="Repeat purchases: time units with a purchase after the first."
    )
    recency: Units | None = Field(default=None, description="Time of the last purchase, from the first.")
    t: Units | None = Field(default=None, description="Time from the first purchase to the cut-off.")
    monetary_value: Money | None = Field(default=None, description="Mean spend of the repeat purchases.")
    current_value: Money | None = Field(default=None, description="Net spend in the current-value period.")
    past_spend: Money | None = Field(default=None, description="Net spend up to the cut-off.")
    transactions: list[ValueTransaction] | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="Instead of a summary: the customer's transaction lines, summarised as of `as_of` the way "
        "the version's training summarised its data.",
    )
    as_of: dt.date | None = Field(
        default=None,
        description="With transactions: the cut-off (default: the last transaction's day); no transaction "
        "may come after it, and it may not come before the first purchase.",
    )


SUMMARY_EXAMPLE = {
    "customer_id": "12347",
    "frequency": 6,
    "recency": 52,
    "t": 52,
    "monetary_value": 599.7,
    "current_value": 1294.32,
    "past_spend": 4310.0,
}


class ValueRequest(ScoringRequest):
    line: str | None = Field(
        default="retail",
        min_length=1,
        max_length=64,
        description="The value line whose model scores (GET /v1/models lists them); default: retail.",
    )
    customers: list[ValueCustomer] = Field(
        min_length=1,
        description="Customers of the line: only `customer_id` (its summary from the line's store, "
        "`clm ingest customers --line retail`), a summary, or `transactions`.",
        examples=[
            [SUMMARY_EXAMPLE],
            [{"customer_id": "12347"}],
            [
                {
                    "customer_id": "c-1",
                    "as_of": "2011-12-09",
                    "transactions": [
                        {"date": "2011-01-10", "amount": 120.5},
                        {"date": "2011-03-02", "amount": 80.0},
                        {"date": "2011-03-20", "amount": -20.0, "is_return": True},
                    ],
                }
            ],
        ],
    )


class ValueSummary(BaseModel):
    frequency: int
    recency: float
    t: float
    monetary_value: float
    current_value: float | None
    past_spend: float | None


class ValueResult(RecordCheck):
    customer_id: RecordId
    summary: ValueSummary = Field(description="What was scored: sent, stored, or made from the transactions.")
    horizon_months: int = Field(description="The version's lifetime-value horizon.")
    annual_discount_rate: float
    expected_purchases: float = Field(ge=0, description="Expected purchases over the horizon (BG/NBD).")
    probability_alive: float = Field(ge=0, le=1, description="P(the customer has not dropped out) (BG/NBD).")
    expected_spend_per_purchase: float = Field(ge=0, description="Gamma-Gamma's expected spend per purchase.")
    lifetime_value: float = Field(ge=0, description="Discounted expected spend over the horizon.")
    current_value: float | None = Field(description="Net spend in the current-value period (null: unknown).")
    value_tier: Literal["high", "mid", "low"] | None = Field(
        description="By the version's stored cut-offs, on `tier_basis`; null when its figure is unknown."
    )
    tier_basis: Literal["lifetime_value", "past_spend"] = Field(
        description="past_spend when the version's lifetime value ranked its holdout no better than past spend."
    )
    tier_reason: str


class ValueResponse(ScoringResponse):
    results: list[ValueResult]
