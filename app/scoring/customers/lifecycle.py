"""The call-centre rules (DOMAIN.md): lifecycle stage, value tier, and the next best action with its channel.

Plain rules on the stored record and the served scores, written out in the README; thresholds are constants
here so they are read in one place. Telco shares quoted below are of the 7,043 customers of the demo file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
# Value: the monthly bill (the current revenue), proven by tenure for the top tier. 90 and 35 are about the
# top and bottom quarter of the Telco bills.
HIGH_VALUE_MONTHLY = 90.0
LOW_VALUE_MONTHLY = 35.0
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


def value_tier(monthly_charges: float | None, tenure: int | None) -> Decision:
    """High: a big bill kept for two years; low: a small bill; mid: the rest (Telco: 19 %, 25 %, 56 %)."""
    if monthly_charges is None:
        return Decision("low", "no monthly charges stored")
    months = tenure or 0
    if monthly_charges >= HIGH_VALUE_MONTHLY and months >= LOYAL_TENURE_MONTHS:
        return Decision("high", f"monthly charges {monthly_charges:.2f} for {months} months")
    if monthly_charges < LOW_VALUE_MONTHLY:
        return Decision("low", f"monthly charges {monthly_charges:.2f}")
    if monthly_charges >= HIGH_VALUE_MONTHLY:
        return Decision("mid", f"monthly charges {monthly_charges:.2f}, but only {months} months of tenure")
    return Decision("mid", f"monthly charges {monthly_charges:.2f}")


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
    record: dict[str, Any],
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
        months = record.get("tenure") or 0
        return NextAction(
            "cross_sell", channel, f"Thank them for {months} months with us and offer {product}."
        )
    if high_risk:
        if record.get("contract") == "Month-to-month":
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
