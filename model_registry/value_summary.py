"""One customer's transactions summarised as of a cut-off, the way BG/NBD and Gamma-Gamma read them.

Training summarises every customer of the data with this function and serving summarises the transactions a
client posts with it, so the two cannot disagree. The rules:
- time runs in units of `unit_days` days from the customer's first purchase; a purchase is a unit with at
  least one sale in it (several invoices in one unit are one purchase);
- frequency = purchase units after the first; recency = the last purchase unit; t = whole units from the first
  purchase to the cut-off (so 0 <= recency <= t);
- returns and cancellations never count as purchases; their amount counts against spend: the mean spend of the
  repeat purchases (monetary_value) is scaled down by the customer's share of returned spend (at most all);
- current_value = net spend (sales less returns, not below 0) in the last `current_days` days to the cut-off;
  past_spend = net spend up to the cut-off (what ranking by past spend ranks on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

SUMMARY_FIELDS = ("frequency", "recency", "t", "monetary_value", "current_value", "past_spend")


@dataclass(frozen=True)
class Transaction:
    day: date
    amount: float  # positive for a sale; a return's amount is negative
    is_return: bool


@dataclass(frozen=True)
class Summary:
    frequency: int
    recency: int
    t: int
    monetary_value: float
    current_value: float
    past_spend: float

    def record(self) -> dict[str, Any]:
        """The summary under its API field names (what the store keeps and /v1/value/score reads)."""
        return asdict(self)


class SummaryError(ValueError):
    """The transactions cannot be summarised at this cut-off (no purchase before it)."""


def summarise(transactions: list[Transaction], cutoff: date, unit_days: int, current_days: int) -> Summary:
    """The customer's summary as of `cutoff`: transactions after it are the caller's to leave out."""
    sales = [t for t in transactions if not t.is_return]
    if not sales:
        raise SummaryError("no purchase on or before the cut-off")
    first = min(t.day for t in sales)
    spend_by_unit: dict[int, float] = {}
    for sale in sales:
        unit = (sale.day - first).days // unit_days
        spend_by_unit[unit] = spend_by_unit.get(unit, 0.0) + sale.amount
    gross = sum(t.amount for t in sales)
    returned = -sum(t.amount for t in transactions if t.is_return)
    kept_share = 1.0 - min(1.0, returned / gross) if gross > 0 else 0.0
    repeats = [spend for unit, spend in spend_by_unit.items() if unit > 0]
    monetary = sum(repeats) / len(repeats) * kept_share if repeats else 0.0
    recent = sum(t.amount for t in transactions if (cutoff - t.day).days < current_days)
    return Summary(
        frequency=len(repeats),
        recency=max(spend_by_unit),
        t=(cutoff - first).days // unit_days,
        monetary_value=round(monetary, 6),
        current_value=round(max(0.0, recent), 6),
        past_spend=round(max(0.0, gross - returned), 6),
    )
