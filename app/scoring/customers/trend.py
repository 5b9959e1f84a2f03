"""A customer's score over time, from the prediction log, and its trend.

The rule: take the customer's scorings by the model (any version), oldest first, with a repeat collapsed (the
same version giving the same score again, as each view of an unchanged profile does, is one scoring, not
several), and keep the last `scorings` of them. Fewer than 3: "not enough history". Otherwise the least-squares
slope of the score against the scoring's position (0, 1, 2, ...): above `min_slope` per scoring "rising", below
its negative "falling", else "steady". Per scoring rather than per day, so a customer scored monthly and one
scored daily read alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

MIN_SCORINGS = 3
# Rows read per scoring kept: repeats (views of an unchanged profile) are collapsed after the read.
READ_PER_SCORING = 10


def trend_of(
    history: Sequence[tuple[datetime, int, float]], *, scorings: int, min_slope: float
) -> dict[str, Any]:
    """`history`: (served_at, version, score), newest first (predictions.history_of)."""
    collapsed: list[tuple[datetime, int, float]] = []
    for served_at, version, score in reversed(history):
        if collapsed and collapsed[-1][1:] == (version, score):
            continue
        collapsed.append((served_at, version, score))
    kept = collapsed[-scorings:]
    rule = (
        f"least-squares slope of the score over the last {scorings} distinct scorings (repeats collapsed): "
        f"rising above {min_slope:g} per scoring, falling below {-min_slope:g}, else steady; fewer than "
        f"{MIN_SCORINGS} scorings: not enough history"
    )
    slope = None
    if len(kept) < MIN_SCORINGS:
        trend = "not enough history"
    else:
        slope = _least_squares_slope([score for *_, score in kept])
        trend = "rising" if slope > min_slope else "falling" if slope < -min_slope else "steady"
    return {
        "trend": trend,
        "slope": None if slope is None else round(slope, 6),
        "rule": rule,
        "history": [{"served_at": at, "version": version, "score": score} for at, version, score in kept],
    }


def _least_squares_slope(scores: Sequence[float]) -> float:
    """The slope of the least-squares line through (i, scores[i]): np.polyfit's, without its ~0.1 ms of setup on
    every profile view."""
    n = len(scores)
    mean_x = (n - 1) / 2
    mean_y = sum(scores) / n
    covariance = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(scores))
    variance = sum((i - mean_x) ** 2 for i in range(n))
    return covariance / variance
