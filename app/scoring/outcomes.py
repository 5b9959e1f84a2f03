"""Outcomes fed back from the CRM, and the realised performance of the versions that scored those records.

Which outcome judges which model: customer_churned judges clm-churn, lead_converted with line L judges
clm-leads-L, offer_accepted of product P judges clm-products' score for P.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.repositories import outcomes as outcome_repo
from app.repositories import predictions as prediction_repo
from app.repositories.predictions import ScoredOutcome
from app.schemas.outcomes import QUALIFIER, OutcomeIn
from app.scoring.use_cases.churn import CHURN_MODEL
from app.scoring.use_cases.leads import LEADS_MODEL_PREFIX
from app.scoring.use_cases.products import PRODUCTS_MODEL

CUSTOMER_CHURNED = "customer_churned"


def record_outcomes(session: Session, outcomes: Sequence[OutcomeIn]) -> outcome_repo.RecordCounts:
    facts = [
        outcome_repo.OutcomeIn(
            event=o.event,
            record_id=str(o.record_id),
            item=_item(o),
            happened=o.happened,
            observed_at=o.observed_at,
        )
        for o in outcomes
    ]
    return outcome_repo.record(session, facts)


def _item(outcome: OutcomeIn) -> str:
    """The product or lead line the event is about; '' for an event about the record alone."""
    qualifier = QUALIFIER.get(outcome.event)
    return str(getattr(outcome, qualifier)) if qualifier else ""


@dataclass(frozen=True)
class Judge:
    """The outcome that judges a model: its event, and the item outcomes must carry (None: the logged item)."""

    event: str
    item: str | None


def judge_of(model: str) -> Judge:
    if model == CHURN_MODEL:
        return Judge(CUSTOMER_CHURNED, "")
    if model.startswith(LEADS_MODEL_PREFIX):
        return Judge("lead_converted", model.removeprefix(LEADS_MODEL_PREFIX))
    if model == PRODUCTS_MODEL:
        return Judge("offer_accepted", None)
    raise NotFound(f"no outcome judges {model}: performance is reported for churn, lead and product models")


def performance(session: Session, model: str) -> tuple[str, list[dict[str, Any]]]:
    """The judging event, and per served version: realised ROC AUC, conversion and lift by label and by item."""
    judge = judge_of(model)
    rows = prediction_repo.scored_outcomes(session, model, judge.event, judge.item)
    by_version: dict[int, list[ScoredOutcome]] = defaultdict(list)
    for row in rows:
        by_version[row.version].append(row)
    return judge.event, [_version_figures(version, scored) for version, scored in sorted(by_version.items())]


def _version_figures(version: int, rows: list[ScoredOutcome]) -> dict[str, Any]:
    scores = np.array([r.score for r in rows], dtype=np.float64)
    happened = np.array([r.happened for r in rows], dtype=bool)
    rate = float(happened.mean())
    top = np.argsort(-scores, kind="stable")[: math.ceil(len(rows) / 10)]
    return {
        "version": version,
        "records": len(rows),
        "positives": int(happened.sum()),
        "positive_rate": rate,
        "roc_auc": roc_auc(scores, happened),
        "top_decile_lift": float(happened[top].mean()) / rate if rate > 0 else None,
        "by_label": _groups(rows, rate, lambda r: r.label),
        "by_item": _groups(rows, rate, lambda r: r.item or None),
    }


def _groups(rows: list[ScoredOutcome], overall: float, key: Any) -> list[dict[str, Any]]:
    """Conversion per group, the group with the highest mean score first (A before B, high before low)."""
    groups: dict[str, list[ScoredOutcome]] = defaultdict(list)
    for row in rows:
        name = key(row)
        if name is not None:
            groups[name].append(row)
    ranked = sorted(groups.items(), key=lambda group: -sum(r.score for r in group[1]) / len(group[1]))
    figures = []
    for name, members in ranked:
        positives = sum(r.happened for r in members)
        positive_rate = positives / len(members)
        figures.append(
            {
                "group": name,
                "records": len(members),
                "positives": positives,
                "positive_rate": positive_rate,
                "lift": positive_rate / overall if overall > 0 else None,
            }
        )
    return figures


def roc_auc(scores: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_]) -> float | None:
    """P(a positive scores above a negative), ties counting one half; None without both classes."""
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    if len(pos) == 0 or len(neg) == 0:
        return None
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (len(pos) * len(neg)))
