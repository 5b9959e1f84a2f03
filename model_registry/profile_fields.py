"""Which fields of a churn line's records the profile's lifecycle rules read, and the line's value thresholds.

Declared in the line's spec (`[profile]`), stored with each version, read by the profile: a line a team adds
names its own tenure and value fields (a bank's `months_on_book`, a card's yearly spend) and the rules work on
its customers without code. A default-line version stored without it (registered before this existed) reads
the Telco fields, as it always did.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ProfileFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenure_field: str | None = Field(
        default=None, description="Months the customer has been with the company (stage, loyalty)."
    )
    contract_field: str | None = Field(
        default=None, description="The contract, whose first term sets the build-up stage (Telco's values)."
    )
    value_field: str | None = Field(
        default=None, description="What the customer brings now, per period (the value tier)."
    )
    value_label: str = Field(default="value", description="How a reason names the value field's figure.")
    value_high: float = Field(default=0.0, description="At least this (kept 24 months) is high value.")
    value_low: float = Field(default=0.0, description="Below this is low value.")
    # Lifetime value (model_registry/contractual.py): where the line has a value field, training stores tier
    # cut-offs on it and the profile tiers on lifetime value; the thresholds above serve only older versions.
    value_period_months: float = Field(
        default=1.0, gt=0, description="The value field is the margin of this many months (a card: 12)."
    )
    margin_rate: float = Field(
        default=1.0, gt=0, le=1, description="The share of the value field that is margin (1: costs unknown)."
    )
    churn_horizon_months: float = Field(
        default=1.0, gt=0, description="The churn model's probability is of leaving within this many months."
    )
    lifetime_months: int = Field(default=60, ge=1, le=600, description="Lifetime value sums at most this.")
    annual_discount_rate: float = Field(default=0.10, ge=0, le=1)
    high_share: float = Field(default=0.2, gt=0, lt=1, description="Share of customers of high value.")
    mid_share: float = Field(default=0.3, gt=0, lt=1, description="Share of mid value; low the rest.")

    @model_validator(mode="after")
    def _ordered(self) -> ProfileFields:
        if self.value_field is not None and self.value_low >= self.value_high:
            raise ValueError("value_low must be below value_high")
        return self

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> ProfileFields:
        stored = metadata.get("profile")
        if stored is not None:
            return cls.model_validate(stored)
        # Registered before lines declared their fields: the default churn line is Telco's; another line's
        # fields are not known, and the rules say so (tenure unknown, no value stored).
        return TELCO if metadata.get("line") is None else cls()


# The Telco line's: 90 and 35 are about the top and bottom quarter of its monthly bills.
TELCO = ProfileFields(
    tenure_field="tenure",
    contract_field="contract",
    value_field="monthly_charges",
    value_label="monthly charges",
    value_high=90.0,
    value_low=35.0,
)
