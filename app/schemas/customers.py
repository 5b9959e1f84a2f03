"""GET /v1/customers/{customer_id}/profile: everything a call-centre agent needs in one look."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.common import Factor, ModelRef


class Part(BaseModel):
    models: list[ModelRef] = Field(
        description="The model versions behind this part (none for a rule on data)."
    )
    features_as_of: datetime = Field(description="When the stored customer record last changed.")
    features_age_seconds: float = Field(description="How old the stored record this part used is.")


class Scoring(BaseModel):
    served_at: datetime
    version: int
    score: float = Field(ge=0, le=1)


class ScoreTrend(BaseModel):
    trend: Literal["rising", "steady", "falling", "not enough history"]
    slope: float | None = Field(description="Least-squares slope of the score per scoring; null below 3")
    rule: str = Field(description="How the trend is decided")
    history: list[Scoring] = Field(
        description="The scorings the trend reads, oldest first (from the prediction log; this view's own "
        "score is not among them)"
    )


class ChurnPart(Part):
    churn_probability: float = Field(ge=0, le=1)
    risk_level: Literal["high", "medium", "low"]
    top_factors: list[Factor]
    trend: ScoreTrend = Field(description="The churn score over the customer's last scorings, and its trend")


class Offer(BaseModel):
    product: str
    propensity: float = Field(ge=0, le=1)
    rank: int
    top_factors: list[Factor] | None


class OffersPart(Part):
    available: bool = Field(description="false when no product model is served; `message` says why.")
    message: str | None = None
    intent: Literal["high", "low", "unknown"] = Field(description="Purchase intent from the best offer.")
    recommendations: list[Offer]


class DecisionPart(Part):
    reason: str


class LifecyclePart(DecisionPart):
    stage: Literal["A", "B", "C", "D", "E"]
    name: Literal["acquisition", "build-up", "mature", "decline", "exit"]


class ValuePart(DecisionPart):
    tier: Literal["high", "mid", "low"]
    basis: Literal["lifetime_value", "lifetime_value_if_kept", "bill"] = Field(
        description="What the tier is on: lifetime value at the churn risk now; for a customer in decline or "
        "churned, the lifetime value if kept or won back; the bill alone only for a version storing no "
        "lifetime-value cut-offs (the reason says so)."
    )
    current_value: float | None = Field(description="The margin of one month now (null: no value stored).")
    lifetime_value: float | None = Field(
        description="Discounted margin over the line's horizon at the churn probability now (README)."
    )
    lifetime_value_if_kept: float | None = Field(
        description="The same at the line's base churn rate: what keeping or winning the customer back is worth."
    )
    expected_months: float | None = Field(
        description="Expected months the customer stays, within the horizon, at the churn probability now."
    )


class NextBestActionPart(Part):
    action: Literal["cross_sell", "fix_then_sell", "retention_care", "nurture", "win_back", "no_action"]
    channel: Literal["account_manager", "outbound_call", "broadcast", "none"]
    script: str = Field(description="One line for the agent.")
    intent: Literal["high", "low", "unknown"]
    risk_level: Literal["high", "medium", "low"]
    value_tier: Literal["high", "mid", "low"]


class ProfileResponse(BaseModel):
    customer_id: str
    line: str | None = Field(description="The churn line the customer belongs to; null: the default line.")
    request_id: str
    churn: ChurnPart
    offers: OffersPart
    lifecycle: LifecyclePart
    value: ValuePart
    next_best_action: NextBestActionPart
