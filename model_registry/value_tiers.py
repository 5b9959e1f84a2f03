"""Value tiers from a version's stored cut-offs: high, mid and low, on the figure the version tiers on.

Training cuts the tiers at quantiles of that figure over its customers (the top `high_share` high, the next
`mid_share` mid) and stores the cut-offs with the version; serving tiers every customer by them. The figure is
lifetime value, or past spend when the version's lifetime value ranked customers no better than past spend did
on its holdout (the tier then says so rather than pretend).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Basis = Literal["lifetime_value", "past_spend"]
Tier = Literal["high", "mid", "low"]
BASIS_LABELS: dict[str, str] = {"lifetime_value": "lifetime value", "past_spend": "past spend"}


@dataclass(frozen=True)
class TierCutoffs:
    basis: Basis
    high: float  # at least this: high
    mid: float  # at least this (and below high): mid; below: low
    high_share: float
    mid_share: float

    def tier(self, value: float) -> Tier:
        if value >= self.high:
            return "high"
        return "mid" if value >= self.mid else "low"

    def where(self, value: float) -> str:
        """Where the value falls among the cut-offs, in words."""
        tier = self.tier(value)
        if tier == "high":
            return f"at least {self.high:.2f}, the top {self.high_share:.0%}"
        if tier == "mid":
            return f"between {self.mid:.2f} and {self.high:.2f}"
        return f"below {self.mid:.2f}"

    def reason(self, value: float) -> str:
        return f"{BASIS_LABELS[self.basis]} {value:.2f}: {self.where(value)}"

    def to_metadata(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_metadata(cls, stored: dict[str, Any]) -> TierCutoffs:
        cutoffs = cls(**stored)
        if not cutoffs.mid <= cutoffs.high:
            raise ValueError(f"tier cut-offs out of order: {stored}")
        return cutoffs


def tier_cutoffs(
    basis: Basis, values: npt.NDArray[np.floating[Any]], high_share: float, mid_share: float
) -> TierCutoffs:
    """Cut-offs putting the top `high_share` of these values high and the next `mid_share` mid."""
    high = float(np.quantile(values, 1 - high_share))
    mid = float(np.quantile(values, 1 - high_share - mid_share))
    return TierCutoffs(basis, high, mid, high_share, mid_share)
