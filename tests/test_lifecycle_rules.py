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
    won_back = next_best_action("E", "high", "low", "high", 30, "One year", None, None)
    assert (won_back.action, won_back.channel) == ("win_back", "account_manager")
    assert next_best_action("E", "high", "low", "mid", 30, "One year", None, None).action == "no_action"
    assert next_best_action("E", "high", "low", "low", 30, "One year", None, None).action == "no_action"
    # Where a model knows the chance of coming back (P(alive)), a high-value customer needs a real one too.
    assert (
        next_best_action("E", "high", "low", "high", 30, None, None, None, p_alive=0.8).action == "win_back"
    )
    unlikely = next_best_action("E", "high", "low", "high", 30, None, None, None, p_alive=0.2)
    assert unlikely.action == "no_action"
    assert "P(alive) 0.20" in unlikely.script


# Cut-offs as a Telco version stores them (shapes only: the figures are this test's).
LIFETIME = {
    "tiers": {"basis": "lifetime_value", "high": 3000.0, "mid": 1000.0, "high_share": 0.2, "mid_share": 0.3},
    "tiers_if_kept": {
        "basis": "lifetime_value",
        "high": 2500.0,
        "mid": 1500.0,
        "high_share": 0.2,
        "mid_share": 0.3,
    },
    "won_back_churn_probability": 0.265,
}
TELCO_12 = TELCO.model_copy(update={"churn_horizon_months": 12.0})


def test_lifetime_value_is_the_margin_times_the_discounted_expected_lifetime() -> None:
    from model_registry.contractual import contractual_value

    # No churn and no discount: the margin for every month of the horizon.
    flat = TELCO.model_copy(update={"annual_discount_rate": 0.0, "lifetime_months": 60})
    assert contractual_value(100.0, 0.0, flat).lifetime_value == pytest.approx(6000.0)
    # p = 0.5 within one month: half stay each month; undiscounted, 1 more month expected (0.5 + 0.25 + ...).
    half = contractual_value(100.0, 0.5, flat)
    assert half.expected_months == pytest.approx(1.0)
    assert half.lifetime_value == pytest.approx(100.0)
    # Over 12 months, p compounds from a monthly rate; discounting lowers the value.
    yearly = contractual_value(100.0, 0.265, TELCO_12)
    assert yearly.monthly_churn == pytest.approx(1 - 0.735 ** (1 / 12))
    assert (
        yearly.lifetime_value
        < contractual_value(
            100.0, 0.265, TELCO_12.model_copy(update={"annual_discount_rate": 0.0})
        ).lifetime_value
    )


def test_the_value_tier_is_on_lifetime_value_and_in_decline_or_exit_on_the_value_if_kept() -> None:
    from app.scoring.customers.lifecycle import customer_value

    loyal = customer_value(100.0, 60, 0.02, "C", TELCO_12, LIFETIME)
    assert (loyal.basis, loyal.tier) == ("lifetime_value", "high")
    assert loyal.lifetime_value is not None
    assert loyal.lifetime_value >= 3000
    assert loyal.current_value == 100.0
    assert loyal.reason.startswith(f"lifetime value {loyal.lifetime_value:.2f}")
    # The same bill at high risk is worth less now, but in decline the tier is what keeping it is worth.
    risky = customer_value(100.0, 60, 0.9, "D", TELCO_12, LIFETIME)
    assert risky.lifetime_value is not None
    assert risky.lifetime_value < loyal.lifetime_value
    assert risky.basis == "lifetime_value_if_kept"
    assert risky.tier == "high"
    assert "if kept" in risky.reason
    churned = customer_value(20.0, 60, 0.9, "E", TELCO_12, LIFETIME)
    assert churned.tier == "low"
    assert "if won back" in churned.reason


def test_without_lifetime_cut_offs_the_tier_is_on_the_bill_and_says_so() -> None:
    from app.scoring.customers.lifecycle import customer_value

    decided = customer_value(29.85, 1, 0.5, "B", TELCO, None)
    assert (decided.basis, decided.tier, decided.lifetime_value) == ("bill", "low", None)
    assert (
        decided.reason
        == "monthly charges 29.85 (on the bill alone: this version stores no lifetime-value cut-offs)"
    )


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
