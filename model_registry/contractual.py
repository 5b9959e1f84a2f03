"""Customer value in a contractual setting (a telco plan, a card): margin per month × expected remaining lifetime.

The churn model gives p, the probability of leaving within its horizon of H months (the line's
`churn_horizon_months`: Telco's label is "left within the last month", H = 1). Assumptions, stated in the README:
- retention is geometric: the customer leaves in any month with the same probability c = 1 - (1 - p)^(1/H),
  the monthly rate that compounds to p over H months;
- the margin m per month is the line's value field as it stands (× `margin_rate`, the share of it that is
  margin; 1 where costs are unknown, so "margin" is revenue), paid at the end of each month the customer stays;
- value is discounted at the monthly rate d equivalent to the annual `annual_discount_rate` and summed over at
  most `lifetime_months` months.
Then, with s = (1 - c) / (1 + d):  lifetime value = m × (s + s^2 + ... + s^N) = m × s × (1 - s^N) / (1 - s),
and the expected remaining lifetime (undiscounted, within the N months) = (1 - c) × (1 - (1 - c)^N) / c months.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from model_registry.profile_fields import ProfileFields
from model_registry.value_tiers import tier_cutoffs


@dataclass(frozen=True)
class ContractualValue:
    monthly_margin: float
    monthly_churn: float
    expected_months: float
    lifetime_value: float


def monthly_churn(probability: float, horizon_months: float) -> float:
    return float(1 - (1 - min(max(probability, 0.0), 1.0)) ** (1 / horizon_months))


def contractual_value(value: float, churn_probability: float, fields: ProfileFields) -> ContractualValue:
    """The customer's current margin per month and lifetime value at this churn probability."""
    margin = value * fields.margin_rate / fields.value_period_months
    churn = monthly_churn(churn_probability, fields.churn_horizon_months)
    months = fields.lifetime_months
    kept = 1 - churn
    discount = (1 + fields.annual_discount_rate) ** (1 / 12) - 1
    s = kept / (1 + discount)
    factor = float(months) if s == 1 else s * (1 - s**months) / (1 - s)
    expected = float(months) if churn == 0 else kept * (1 - kept**months) / churn
    return ContractualValue(margin, churn, expected, margin * factor)


def lifetime_values(
    values: npt.NDArray[np.float64], probabilities: npt.NDArray[np.float64], fields: ProfileFields
) -> npt.NDArray[np.float64]:
    """`contractual_value(...).lifetime_value` of many customers (training's tier cut-offs)."""
    return np.array(
        [contractual_value(v, p, fields).lifetime_value for v, p in zip(values, probabilities, strict=True)],
        dtype=np.float64,
    )


def lifetime_metadata(
    fields: ProfileFields,
    records: list[dict[str, Any]],
    probabilities: npt.NDArray[np.float64],
    base_churn_probability: float,
) -> dict[str, Any]:
    """What a churn version stores for the profile's value tiers, from these customers (the validation rows):
    cut-offs on their lifetime value at the model's own probabilities, and cut-offs on their lifetime value if
    kept, at the line's base churn probability (also stored): what a customer in decline is worth keeping and a
    churned one winning back, a returning customer being taken to stay like an average one."""
    assert fields.value_field is not None
    values = np.array([_number(r.get(fields.value_field)) for r in records], dtype=np.float64)
    known = np.isfinite(values)
    lifetime = lifetime_values(values[known], probabilities[known], fields)
    if_kept = lifetime_values(values[known], np.full(int(known.sum()), base_churn_probability), fields)
    shares = (fields.high_share, fields.mid_share)
    return {
        "tiers": tier_cutoffs("lifetime_value", lifetime, *shares).to_metadata(),
        "tiers_if_kept": tier_cutoffs("lifetime_value", if_kept, *shares).to_metadata(),
        "won_back_churn_probability": base_churn_probability,
    }


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")
