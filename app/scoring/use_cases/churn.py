"""Churn warning: probability, risk level by the version's own thresholds, and reasons."""

from __future__ import annotations

from typing import Any

from app import metrics
from app.prediction_log import Prediction
from app.schemas.churn import ChurnRequest, ChurnResponse
from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.shadow import compare_fields
from app.scoring.use_cases.base import UseCase
from model_registry.grades import assign_risk_levels

CHURN_MODEL = "clm-churn"


def score_customers(scorer: Scorer, customers: list[dict[str, Any]], explain: bool) -> list[dict[str, Any]]:
    probabilities, factors = scorer.score(customers, "customers", explain)
    levels = assign_risk_levels(probabilities, scorer.metadata["risk_levels"])
    metrics.observe_many(metrics.CHURN_PROBABILITY.labels(scorer.name, str(scorer.version)), probabilities)
    id_field = scorer.id_field
    results = []
    for row, (customer, probability) in enumerate(zip(customers, probabilities.tolist(), strict=True)):
        results.append(
            {
                "customer_id": customer.get(id_field),
                "churn_probability": round(probability, 6),
                "risk_level": levels[row],
                "top_factors": factors[row] if factors is not None else None,
            }
        )
    return results


def churn_predictions(results: list[dict[str, Any]]) -> list[Prediction]:
    """What the prediction log keeps of each result."""
    return [Prediction(r["customer_id"], r["churn_probability"], r["risk_level"]) for r in results]


CHURN = UseCase(
    name="churn",
    path="/v1/churn/score",
    operation_id="score_churn",
    summary="Churn probability, risk level and reasons for a batch of customers",
    description="Score 1–1,000 customers of a churn line (whole records, or stored customers by "
    "`customer_id`); results in request order.",
    request=ChurnRequest,
    response=ChurnResponse,
    records_field="customers",
    score=lambda scorer, customers, body: score_customers(scorer, customers, body.explain),
    predictions=lambda _, results: churn_predictions(results),
    compare=compare_fields("churn_probability", "risk_level"),
    from_store=True,
    score_field="churn_probability",
)
