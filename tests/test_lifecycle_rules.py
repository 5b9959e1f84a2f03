"""The documented call-centre rules (README): lifecycle stage, value tier, next best action and channel."""

from __future__ import annotations

import pytest

from app.scoring.customers.lifecycle import (
    churn_reason,
    lifecycle_stage,
    next_best_action,
    purchase_intent,
    value_tier,
)
from model_registry.profile_fields import TELCO, ProfileFields


@pytest.mark.parametrize(
    ("tenure", "contract", "risk", "churned", "stage"),
    [
        (30, "One year", "low", True, "E"),  # a recorded churn wins over everything
        (0, "Month-to-month", "high", False, "A"),  # signed up, never billed
        (None, None, "low", False, "A"),
        (5, "Month-to-month", "high", False, "D"),
        (60, "Two year", "high", False, "D"),
        (12, "Month-to-month", "medium", False, "B"),
        (13, "One year", "low", False, "C"),
        (20, "Two year", "low", False, "B"),  # a two-year contract's first term is 24 months
        (25, "Two year", "medium", False, "C"),
    ],
)
def test_the_lifecycle_stage_follows_the_documented_rules(
    tenure: int | None, contract: str | None, risk: str, churned: bool, stage: str
) -> None:
    assert lifecycle_stage(tenure, contract, risk, churned).value == stage


@pytest.mark.parametrize(
    ("monthly", "tenure", "tier"),
    [
        (95.0, 24, "high"),
        (90.0, 60, "high"),
        (95.0, 23, "mid"),  # a big bill not yet kept for two years
        (89.99, 60, "mid"),
        (35.0, 3, "mid"),
        (34.99, 70, "low"),
        (None, 10, "low"),
    ],
)
def test_the_value_tier_follows_the_documented_thresholds(
    monthly: float | None, tenure: int, tier: str
) -> None:
    assert value_tier(monthly, tenure, TELCO).value == tier


def test_a_line_tiers_value_by_its_own_field_and_thresholds() -> None:
    card = ProfileFields(
        tenure_field="months_on_book",
        value_field="total_trans_amt",
        value_label="12-month card spend",
        value_high=4741.0,
        value_low=2155.5,
    )
    assert value_tier(5000.0, 36, card).value == "high"
    assert value_tier(3000.0, 36, card).value == "mid"
    decided = value_tier(2000.0, 36, card)
    assert decided.value == "low"
    assert decided.reason == "12-month card spend 2000.00"


def test_purchase_intent_is_high_from_an_even_chance_and_unknown_without_offers() -> None:
    assert purchase_intent(0.5) == "high"
    assert purchase_intent(0.49) == "low"
    assert purchase_intent(None) == "unknown"


@pytest.mark.parametrize(
    ("risk", "intent", "tier", "action", "channel"),
    [
        ("low", "high", "high", "cross_sell", "account_manager"),
        ("medium", "high", "mid", "cross_sell", "outbound_call"),
        ("high", "high", "low", "fix_then_sell", "broadcast"),
        ("high", "low", "high", "retention_care", "account_manager"),
        ("high", "unknown", "mid", "retention_care", "outbound_call"),
        ("low", "low", "high", "nurture", "broadcast"),  # nurture is low-cost whatever the value
        ("medium", "unknown", "mid", "nurture", "broadcast"),
    ],
)
def test_the_next_best_action_follows_the_intent_risk_matrix_and_the_channel_the_value(
    risk: str, intent: str, tier: str, action: str, channel: str
) -> None:
    decided = next_best_action(
        "C", risk, intent, tier, 14, "Month-to-month", "tech_support", "contract = Month-to-month"
    )  # type: ignore[arg-type]
    assert (decided.action, decided.channel) == (action, channel)
    assert decided.script


def test_churned_customers_are_won_back_when_worth_it() -> None:
    assert next_best_action("E", "high", "low", "high", 30, "One year", None, None).action == "win_back"
    assert next_best_action("E", "high", "low", "low", 30, "One year", None, None).action == "no_action"


def test_scripts_name_the_offer_and_the_strongest_reason_for_churn() -> None:
    factors = [
        {"feature": "tenure", "value": 40, "impact": -0.9},
        {"feature": "contract", "value": "Month-to-month", "impact": 0.7},
    ]
    reason = churn_reason(factors)
    assert reason == "contract = Month-to-month"
    cross_sell = next_best_action("C", "low", "high", "mid", 40, "Month-to-month", "tech_support", reason)
    assert cross_sell.script == "Thank them for 40 months with us and offer tech support."
    assert reason in next_best_action("D", "high", "low", "mid", 40, "Month-to-month", None, reason).script
