"""The call-centre rules (DOMAIN.md): lifecycle stage, value tier, and the next best action with its channel.

Plain rules on the stored record and the served scores, written out in the README. Which fields of the record
they read, and the value thresholds, are the churn line's own (model_registry/profile_fields.py, from its
spec); the other thresholds are constants here. Telco shares quoted below are of the 7,043 demo customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from model_registry.contractual import contractual_value
from model_registry.profile_fields import ProfileFields
from model_registry.value_tiers import TierCutoffs

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
# A churned customer is worth winning back only with a real chance of coming back, where a model says (P(alive)).
MIN_WIN_BACK_P_ALIVE = 0.5
# In these stages the action is to keep or win back the customer: its tier is the value of doing so.
AT_STAKE_STAGES = ("D", "E")

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


@dataclass(frozen=True)
class CustomerValue:
    tier: str
    reason: str
    basis: str  # lifetime_value, lifetime_value_if_kept, bill
    current_value: float | None = None
    lifetime_value: float | None = None
    lifetime_value_if_kept: float | None = None
    expected_months: float | None = None


def customer_value(
    value: float | None,
    tenure: int | None,
    churn_probability: float,
    stage: str,
    fields: ProfileFields,
    lifetime: dict[str, Any] | None,
) -> CustomerValue:
    """Current and lifetime value (model_registry/contractual.py) and the tier on the version's stored cut-offs:
    on lifetime value at the churn risk now, or, in decline and exit, on the value if kept or won back (at the
    line's base churn rate, against cut-offs on that). A version without cut-offs, or a customer without a value, tiers on the bill alone."""
    if lifetime is None or value is None:
        bill = value_tier(value, tenure, fields)
        why = "no value stored" if value is None else "this version stores no lifetime-value cut-offs"
        return CustomerValue(bill.value, f"{bill.reason} (on the bill alone: {why})", "bill")
    at_stake = stage in AT_STAKE_STAGES
    cutoffs = TierCutoffs.from_metadata(lifetime["tiers_if_kept" if at_stake else "tiers"])
    now = contractual_value(value, churn_probability, fields)
    kept = contractual_value(value, lifetime["won_back_churn_probability"], fields)
    ranked = kept.lifetime_value if at_stake else now.lifetime_value
    tier = cutoffs.tier(ranked)
    where = cutoffs.where(ranked)
    if at_stake:
        how = "if won back" if stage == "E" else "if kept"
        reason = (
            f"lifetime value {how} {ranked:.2f} ({where}) at the line's base churn rate; "
            f"{fields.value_label} {value:.2f}"
        )
    else:
        reason = (
            f"lifetime value {ranked:.2f} ({where}): {fields.value_label} {value:.2f}, "
            f"{now.expected_months:.1f} more months expected at churn probability {churn_probability:.3f}"
        )
    return CustomerValue(
        tier,
        reason,
        "lifetime_value_if_kept" if at_stake else "lifetime_value",
        round(now.monthly_margin, 2),
        round(now.lifetime_value, 2),
        round(kept.lifetime_value, 2),
        round(now.expected_months, 2),
    )


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
    p_alive: float | None = None,
) -> NextAction:
    """The intent × risk matrix of DOMAIN.md, the channel by value; a churned customer is won back when its value
    is high and, where a model knows it (P(alive)), it has a real chance of coming back; else left alone."""
    reason = churn_reason or "none stands out"
    channel = CHANNEL_BY_TIER[tier]
    if stage == "E":
        if tier != "high":
            return NextAction("no_action", "none", f"A former {tier}-value customer: no follow-up.")
        if p_alive is not None and p_alive < MIN_WIN_BACK_P_ALIVE:
            return NextAction(
                "no_action",
                "none",
                f"A former high-value customer unlikely to return (P(alive) {p_alive:.2f}).",
            )
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
