"""Lead scoring: conversion probability, a 0-100 score, a grade by the version's own cut-offs, reasons, and
the ranked pool. Each lead line is its own registered model (`clm-leads-<line>` for the packaged ones); leads
have no default line, so every request names one."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from app import metrics
from app.prediction_log import Prediction
from app.schemas.leads import LeadsRequest, LeadsResponse, RankRequest, RankResponse
from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.shadow import compare_fields
from app.scoring.use_cases.base import UseCase
from model_registry.grades import assign_grades, percentile_scores

log = logging.getLogger(__name__)


def score_leads(scorer: Scorer, leads: list[dict[str, Any]], explain: bool) -> list[dict[str, Any]]:
    """One result per lead, in request order."""
    probabilities, factors = scorer.score(leads, "leads", explain)
    scores, grades = _grade(scorer, probabilities)
    return [
        _result(scorer, lead, probability, score, grade, factors[row] if factors is not None else None)
        for row, (lead, probability, score, grade) in enumerate(
            zip(leads, probabilities.tolist(), scores.tolist(), grades.tolist(), strict=True)
        )
    ]


def rank_leads(
    scorer: Scorer,
    leads: list[dict[str, Any]],
    results: list[dict[str, Any]],
    explain: bool,
    top_k: int | None,
) -> list[dict[str, Any]]:
    """The pool best first, cut to `top_k`, each with its rank. Ties in probability keep request order (a
    stable sort), so the same pool always ranks the same way; only the kept leads are explained."""
    order = sorted(range(len(results)), key=lambda row: -results[row]["conversion_probability"])[:top_k]
    kept = [leads[row] for row in order]
    factors = scorer.top_factors(scorer.encode(kept, "leads"), kept) if explain else None
    ranked = []
    for position, row in enumerate(order):
        result = {**results[row], "rank": position + 1}
        if factors is not None:
            result["top_factors"] = factors[position]
        ranked.append(result)
    return ranked


def _grade(
    scorer: Scorer, probabilities: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.str_]]:
    """Scores and grades by the version's own percentiles and cut-offs; counted per line for monitoring."""
    scores = percentile_scores(probabilities, scorer.metadata["score_quantiles"])
    grades = assign_grades(probabilities, scorer.metadata["grades"])
    line, version = scorer.metadata.get("line", scorer.name), str(scorer.version)
    metrics.observe_many(metrics.LEAD_CONVERSION_PROBABILITY.labels(scorer.name, version), probabilities)
    names, counts = np.unique(grades, return_counts=True)
    by_grade = dict(zip(names.tolist(), counts.tolist(), strict=True))
    for grade, count in by_grade.items():
        metrics.LEAD_GRADES.labels(line, version, grade).inc(count)
    log.info(
        "graded %d %s leads",
        len(probabilities),
        line,
        extra={"line": line, "model": scorer.name, "version": scorer.version, "grades": by_grade},
    )
    return scores, grades


def _result(
    scorer: Scorer,
    lead: dict[str, Any],
    probability: float,
    score: int,
    grade: str,
    factors: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    return {
        scorer.id_field: lead.get(scorer.id_field),
        "conversion_probability": round(probability, 6),
        "score": score,
        "grade": grade,
        "top_factors": factors,
    }


def lead_predictions(scorer: Scorer, results: list[dict[str, Any]]) -> list[Prediction]:
    """What the prediction log keeps of each lead scored (or ranked): its conversion probability and grade."""
    return [Prediction(r[scorer.id_field], r["conversion_probability"], r["grade"]) for r in results]


LEADS = UseCase(
    name="leads",
    path="/v1/leads/score",
    score_field="conversion_probability",
    operation_id="score_leads",
    summary="Conversion probability, score, grade and reasons for a batch of leads of one line",
    description="Score 1–1,000 leads with the line's champion model; results come in request order.",
    request=LeadsRequest,
    response=LeadsResponse,
    records_field="leads",
    score=lambda scorer, leads, body: score_leads(scorer, leads, body.explain),
    predictions=lead_predictions,
    compare=compare_fields("conversion_probability", "grade"),
)

LEAD_RANKING = UseCase(
    name="leads",
    path="/v1/leads/rank",
    operation_id="rank_leads",
    summary="Rank a pool of leads of one line, best first, with score, grade and reasons",
    description="Rank 1–1,000 leads by conversion probability (ties in request order) and return the best "
    "top_k.",
    request=RankRequest,
    response=RankResponse,
    records_field="leads",
    score=lambda scorer, leads, _: score_leads(scorer, leads, explain=False),
    arrange=lambda scorer, leads, results, body: rank_leads(scorer, leads, results, body.explain, body.top_k),
    predictions=lead_predictions,  # the top_k returned: the scores served
)
