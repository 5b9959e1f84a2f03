"""The customer profile: one stored customer scored by every customer model and read by the lifecycle rules.

Churn is required (the stage and the action turn on its risk): without it the profile is a 503. Offers are
optional: when no product model is served the offers part says so, intent is 'unknown', and the rest stands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.errors import ModelNotLoaded, NotFound
from app.prediction_log import RequestPredictions
from app.repositories import customers as customer_repo
from app.scoring import lifecycle
from app.scoring.churn import CHURN_MODEL, churn_predictions, score_customers
from app.scoring.loaded import LoadedModels
from app.scoring.outcomes import CUSTOMER_CHURNED
from app.scoring.products import PRODUCTS_MODEL, match_products, product_predictions
from app.scoring.scorer import Scorer

TOP_OFFERS = 3


def build_profile(
    session: Session, models: LoadedModels, customer_id: str, log_predictions: RequestPredictions
) -> dict[str, Any]:
    churn_scorer = models.get(CHURN_MODEL)
    stored = customer_repo.get_with_churn(session, customer_id, CUSTOMER_CHURNED)
    if stored is None:
        raise NotFound(
            f"no stored customer {customer_id!r}", [{"path": "customer_id", "message": "not in the store"}]
        )
    record = stored.customer.record()
    updated_at = stored.customer.updated_at
    age = {
        "features_as_of": updated_at,
        "features_age_seconds": (datetime.now(UTC) - updated_at).total_seconds(),
    }

    churn = score_customers(churn_scorer, [record], explain=True)[0]
    log_predictions(churn_scorer, churn_predictions([churn]))
    churn_ref = _ref(churn_scorer)
    offers, offers_refs, best = _offers(models, record, log_predictions)

    stage = lifecycle.lifecycle_stage(
        record["tenure"], record["contract"], churn["risk_level"], stored.churned_at is not None
    )
    tier = lifecycle.value_tier(record["monthly_charges"], record["tenure"])
    intent = lifecycle.purchase_intent(best["propensity"] if best else None)
    action = lifecycle.next_best_action(
        stage.value,
        churn["risk_level"],
        intent,
        tier.value,
        record,
        best["product"] if best else None,
        lifecycle.churn_reason(churn["top_factors"]),
    )
    return {
        "customer_id": record["customer_id"],
        "churn": {
            **age,
            "models": [churn_ref],
            "churn_probability": churn["churn_probability"],
            "risk_level": churn["risk_level"],
            "top_factors": churn["top_factors"],
        },
        "offers": {**age, "models": offers_refs, **offers, "intent": intent},
        "lifecycle": {
            **age,
            "models": [churn_ref],
            "stage": stage.value,
            "name": lifecycle.STAGE_NAMES[stage.value],
            "reason": stage.reason,
        },
        "value": {**age, "models": [], "tier": tier.value, "reason": tier.reason},
        "next_best_action": {
            **age,
            "models": [churn_ref, *offers_refs],
            "action": action.action,
            "channel": action.channel,
            "script": action.script,
            "intent": intent,
            "risk_level": churn["risk_level"],
            "value_tier": tier.value,
        },
    }


def _offers(
    models: LoadedModels, record: dict[str, Any], log_predictions: RequestPredictions
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """The offers part, the versions behind it, and the best offer (None when there is none to make)."""
    if PRODUCTS_MODEL not in models.names:
        return _no_offers(f"{PRODUCTS_MODEL} is not served here (see CLM_MODELS)")
    try:
        scorer = models.get(PRODUCTS_MODEL)
    except ModelNotLoaded as exc:
        return _no_offers(exc.message)
    matched = match_products(scorer, [record], TOP_OFFERS, explain=True)
    log_predictions(scorer, product_predictions(matched))
    offers = matched[0]["recommendations"]
    part = {
        "available": True,
        "message": None if offers else "nothing left to offer",
        "recommendations": offers,
    }
    return part, [_ref(scorer)], offers[0] if offers else None


def _no_offers(message: str) -> tuple[dict[str, Any], list[dict[str, Any]], None]:
    return {"available": False, "message": message, "recommendations": []}, [], None


def _ref(scorer: Scorer) -> dict[str, Any]:
    return {"name": scorer.name, "version": scorer.version, "alias": scorer.alias}
