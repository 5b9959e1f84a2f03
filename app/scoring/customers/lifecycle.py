"""The call-centre rules (DOMAIN.md): lifecycle stage, value tier, and the next best action with its channel.

Plain rules on the stored record and the served scores, written out in the README. Which fields of the record
they read, and the value thresholds, are the churn line's own (model_registry/profile_fields.py, from its
spec); the other thresholds are constants here. Telco shares quoted below are of the 7,043 demo customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from model_registry.profile_fields import ProfileFields

Intent = Literal["high", "low", "unknown"]
Action = Literal["cross_sell", "fix_then_sell", "retention_care", "nurture", "win_back", "no_action"]
Channel = Literal["account_manager", "outbound_call", "broadcast", "none"]

STAGE_NAMES: dict[str, str] = {
    "A": "acquisition",
    "B": "build-up",
    "C": "mature",
    "D": "decline",
    "E": "exit",
}
# Months of the first commitment: a customer inside it is still being built up.
FIRST_TERM_MONTHS = {"Two year": 24}
DEFAULT_FIRST_TERM_MONTHS = 12
# Value: the line's value field (Telco: the monthly bill), proven by tenure for the top tier.
LOYAL_TENURE_MONTHS = 24
# Purchase intent is high when the best offer is more likely taken than not.
HIGH_INTENT_PROPENSITY = 0.5

CHANNEL_BY_TIER: dict[str, Channel] = {"high": "account_manager", "mid": "outbound_call", "low": "broadcast"}


@dataclass(frozen=True)
class Decision:
    """A rule's outcome and the reason a person can read."""

    value: str
    reason: str


def lifecycle_stage(tenure: int | None, contract: str | None, risk_level: str, churned: bool) -> Decision:
    """First rule that holds: E churned, A not yet billed, D high risk, B inside the first term, else C."""
    if churned:
        return Decision("E", "a customer_churned outcome is recorded")
    if not tenure:
        return Decision(
            "A", f"tenure is {tenure if tenure is not None else 'unknown'}: not yet a paying customer"
        )
    if risk_level == "high":
        return Decision("D", "churn risk is high")
    term = FIRST_TERM_MONTHS.get(contract or "", DEFAULT_FIRST_TERM_MONTHS)
    if tenure <= term:
        return Decision(
            "B", f"{tenure} months in, inside the first {term}-month term ({contract or 'no contract'})"
        )
    return Decision("C", f"{tenure} months in, past the first {term}-month term, churn risk {risk_level}")


def value_tier(value: float | None, tenure: int | None, fields: ProfileFields) -> Decision:
    """High: a big value kept for two years; low: a small one; mid: the rest (Telco: 19 %, 25 %, 56 %)."""
    label = fields.value_label
    if value is None:
        return Decision("low", f"no {label} stored")
    months = tenure or 0
    if value >= fields.value_high and months >= LOYAL_TENURE_MONTHS:
        return Decision("high", f"{label} {value:.2f} for {months} months")
    if value < fields.value_low:
        return Decision("low", f"{label} {value:.2f}")
    if value >= fields.value_high:
        return Decision("mid", f"{label} {value:.2f}, but only {months} months of tenure")
    return Decision("mid", f"{label} {value:.2f}")


def purchase_intent(best_propensity: float | None) -> Intent:
    if best_propensity is None:
        return "unknown"
    return "high" if best_propensity >= HIGH_INTENT_PROPENSITY else "low"


@dataclass(frozen=True)
class NextAction:
    action: Action
    channel: Channel
    script: str


def next_best_action(
    stage: str,
    risk_level: str,
    intent: Intent,
    tier: str,
    tenure: int | None,
    contract: str | None,
    offer: str | None,
    churn_reason: str | None,
) -> NextAction:
    """The intent × risk matrix of DOMAIN.md, the channel by value; churned customers are won back if worth it."""
    reason = churn_reason or "none stands out"
    channel = CHANNEL_BY_TIER[tier]
    if stage == "E":
        if tier == "low":
            return NextAction("no_action", "none", "A former low-value customer: no follow-up.")
        return NextAction(
            "win_back",
            channel,
            f"Win back: ask what made them leave (top churn driver: {reason}) and offer a deal to return.",
        )
    high_risk = risk_level == "high"
    if intent == "high" and offer is not None:
        product = offer.replace("_", " ")
        if high_risk:
            return NextAction(
                "fix_then_sell",
                channel,
                f"Fix first (top churn driver: {reason}); once settled, offer {product}.",
            )
        thanks = f"Thank them for {tenure} months with us" if tenure else "Thank them for being with us"
        return NextAction("cross_sell", channel, f"{thanks} and offer {product}.")
    if high_risk:
        if contract == "Month-to-month":
            return NextAction(
                "retention_care",
                channel,
                f"Retention (top churn driver: {reason}): offer a loyalty discount on a one-year contract.",
            )
        return NextAction(
            "retention_care",
            channel,
            f"Retention (top churn driver: {reason}): offer a loyalty discount to stay.",
        )
    # Nurture is low-cost by definition: broadcast whatever the value.
    return NextAction("nurture", "broadcast", "Confirm their details and thank them; no offer today.")


def churn_reason(top_factors: list[dict[str, Any]] | None) -> str | None:
    """The strongest reason pushing churn up, for a script: 'contract = Month-to-month'."""
    for factor in top_factors or []:
        if factor["impact"] > 0:
            name = factor["feature"].replace("_", " ")
            return f"{name} unknown" if factor["value"] is None else f"{name} = {factor['value']}"
    return None
