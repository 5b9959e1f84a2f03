"""Lead scoring: conversion probability, a 0-100 score, a grade by the version's own cut-offs, reasons, and
the ranked pool. Each lead line is its own registered model, `clm-leads-<line>`; the lines served are the
configured models with that prefix, so a new line needs a spec, a training run and a configuration entry."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from app import metrics
from app.errors import NotFound
from app.prediction_log import Prediction
from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.shadow import compare_fields
from model_registry.grades import assign_grades, percentile_scores

LEADS_MODEL_PREFIX = "clm-leads-"
# How shadow scoring compares the champion's and the challenger's result for one lead.
LEADS_AGREEMENT = compare_fields("conversion_probability", "grade")
log = logging.getLogger(__name__)


def lead_model(line: str) -> str:
    return LEADS_MODEL_PREFIX + line


def served_lines(models: LoadedModels) -> list[str]:
    return sorted(
        name.removeprefix(LEADS_MODEL_PREFIX) for name in models.names if name.startswith(LEADS_MODEL_PREFIX)
    )


def line_scorer(models: LoadedModels, line: str) -> Scorer:
    """The scorer of a served line: 404 naming the served lines when it is not one, 503 while not loaded."""
    lines = served_lines(models)
    if line not in lines:
        served = ", ".join(lines) or "none"
        raise NotFound(
            f"unknown lead line; lines served here: {served}",
            [{"path": "line", "message": f"must be one of: {served}"}],
        )
    return models.get(lead_model(line))


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
    scorer: Scorer, leads: list[dict[str, Any]], explain: bool, top_k: int | None
) -> list[dict[str, Any]]:
    """The pool best first, cut to `top_k`, each with its rank. Ties in probability keep request order (a
    stable sort), so the same pool always ranks the same way; only the kept leads are explained."""
    probabilities, _ = scorer.score(leads, "leads", explain=False)
    scores, grades = _grade(scorer, probabilities)
    order = np.argsort(-probabilities, kind="stable")[:top_k].tolist()
    kept = [leads[i] for i in order]
    factors = scorer.top_factors(scorer.encode(kept, "leads"), kept) if explain else None
    return [
        {
            **_result(
                scorer,
                leads[i],
                float(probabilities[i]),
                int(scores[i]),
                str(grades[i]),
                factors[position] if factors is not None else None,
            ),
            "rank": position + 1,
        }
        for position, i in enumerate(order)
    ]


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
