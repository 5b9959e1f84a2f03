"""Lead grades, lead scores and churn risk levels as a model version stores them: the one rule training and
serving both apply.

A version's metadata holds `grades`, best first, each with the lowest probability it takes (`min_probability`;
the last grade takes 0.0), and `score_quantiles`, the 0th to 100th percentiles of the validation leads'
probabilities. Both are chosen on the validation rows at training and never change with the version.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def assign_grades(probabilities: npt.ArrayLike, grades: list[dict[str, Any]]) -> npt.NDArray[np.str_]:
    """Each probability's grade: the best grade whose cut-off it reaches; a cut-off belongs to its grade."""
    p = np.asarray(probabilities, dtype=np.float64)
    cutoffs = np.array([g["min_probability"] for g in grades], dtype=np.float64)
    names = np.array([g["grade"] for g in grades])
    return names[np.argmax(p[:, None] >= cutoffs[None, :], axis=1)]  # type: ignore[no-any-return]


def percentile_scores(probabilities: npt.ArrayLike, quantiles: list[float]) -> npt.NDArray[np.int64]:
    """Score 0-100: how many of the validation leads' percentiles 1..100 the probability reaches, so a lead
    scoring 90 scores at least as high as about 90 % of the leads the version was validated on."""
    p = np.asarray(probabilities, dtype=np.float64)
    return np.searchsorted(np.asarray(quantiles[1:], dtype=np.float64), p, side="right").astype(np.int64)


def assign_risk_levels(probabilities: npt.ArrayLike, thresholds: dict[str, float]) -> list[str]:
    """Churn risk per probability: high from `thresholds['high']`, medium from `thresholds['medium']`, else low."""
    p = np.asarray(probabilities, dtype=np.float64)
    levels = np.where(p >= thresholds["high"], "high", np.where(p >= thresholds["medium"], "medium", "low"))
    return levels.tolist()  # type: ignore[no-any-return]
