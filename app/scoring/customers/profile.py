"""The customer profile: one stored customer scored by every customer model and read by the lifecycle rules.

Churn is required (the stage and the action turn on its risk): without it the profile is a 503. Offers are
optional: when no product model is served the offers part says so, intent is 'unknown', and the rest stands.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app import metrics
from app.errors import ModelNotLoaded, NotFound
from app.prediction_log import RequestPredictions
from app.repositories import customers as customer_repo
from app.repositories import line_customers as line_customer_repo
from app.repositories.customers import ScoresKey, StoredCustomer
from app.request_reads import Read
from app.scoring.customers import lifecycle
from app.scoring.outcomes import CUSTOMER_CHURNED
from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.scorer import Scorer
from app.scoring.use_cases.churn import churn_predictions, score_customers
from app.scoring.use_cases.products import match_products, product_predictions
from model_registry.profile_fields import ProfileFields

TOP_OFFERS = 3
# A remembered profile's key: the churn line, and what made its scores.
MemoKey = tuple[str | None, ScoresKey]


@dataclass(frozen=True)
class ProfileScores:
    churn: dict[str, Any]  # the churn result: probability, risk level, reasons
    offers: list[dict[str, Any]] | None  # best offers first; None when no product model is served


class ScoreMemo:
    """The scores of recently viewed customers, keyed by exactly what made them (ScoresKey: the customer, its
    stored record's `updated_at` and the model versions). The same inputs give the same scores, so a repeat
    view of a customer the batch job has not scored (an agent reopening the screen, the CRM and the phone
    system asking about the same caller) skips XGBoost; a changed record or another version is another key and
    is scored afresh. Least recently used out; one per worker process; size 0 remembers nothing."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[MemoKey, ProfileScores] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: MemoKey) -> ProfileScores | None:
        with self._lock:
            scores = self._entries.get(key)
            if scores is not None:
                self._entries.move_to_end(key)
        return scores

    def put(self, key: MemoKey, scores: ProfileScores) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._entries[key] = scores
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)


def stored_read(
    customer_id: str, line: str | None, churn_model: str, history: int
) -> Read[StoredCustomer | None]:
    """The read of a stored customer of the churn line (whether it churned, its last `history` scores by the
    line's churn model): see found()."""
    if line is None:
        return customer_repo.profile_read(customer_id, CUSTOMER_CHURNED, churn_model, history)
    return line_customer_repo.profile_read(line, customer_id, CUSTOMER_CHURNED, churn_model, history)


def found(stored: StoredCustomer | None, customer_id: str, line: str | None) -> StoredCustomer:
    """The stored customer, or a 404."""
    if stored is None:
        where = "the store" if line is None else f"the store of line {line!r}"
        raise NotFound(
            f"no stored customer {customer_id!r}", [{"path": "customer_id", "message": f"not in {where}"}]
        )
    return stored


def build_profile(
    stored: StoredCustomer,
    line: str | None,
    models: LoadedModels,
    memo: ScoreMemo,
    log_predictions: RequestPredictions,
    churn_trend: dict[str, Any],
) -> dict[str, Any]:
    """The profile of a stored customer of a churn line, by the line's churn model and its products model;
    `churn_trend` is the churn score's history and trend (app/scoring/customers/trend.py)."""
    churn_scorer = models.for_line("churn", line)
    products_scorer, no_offers_reason = products_scorer_of(models, line)
    fields = ProfileFields.of(churn_scorer.metadata)
    record = stored.record
    updated_at = stored.updated_at
    age = {
        "features_as_of": updated_at,
        "features_age_seconds": (datetime.now(UTC) - updated_at).total_seconds(),
    }
    customer_id = record[churn_scorer.id_field]
    key: ScoresKey = (
        customer_id,
        updated_at,
        churn_scorer.version,
        products_scorer.version if products_scorer else None,
    )
    scores = _scores_for(stored, (line, key), churn_scorer, products_scorer, memo)
    churn = scores.churn
    log_predictions(churn_scorer, churn_predictions([churn]))
    churn_ref = churn_scorer.ref
    if products_scorer is not None and scores.offers is not None:
        log_predictions(
            products_scorer,
            product_predictions([{"customer_id": customer_id, "recommendations": scores.offers}]),
        )
        offers_refs = [products_scorer.ref]
        offers = {
            "available": True,
            "message": None if scores.offers else "nothing left to offer",
            "recommendations": scores.offers,
        }
    else:
        offers_refs = []
        offers = {"available": False, "message": no_offers_reason, "recommendations": []}
    best = scores.offers[0] if scores.offers else None

    tenure = _field(record, fields.tenure_field)
    contract = _field(record, fields.contract_field)
    stage = lifecycle.lifecycle_stage(tenure, contract, churn["risk_level"], stored.churned_at is not None)
    value = lifecycle.customer_value(
        _field(record, fields.value_field),
        tenure,
        churn["churn_probability"],
        stage.value,
        fields,
        churn_scorer.metadata.get("lifetime_value"),
    )
    # Nothing left to offer is low intent; no product model to ask is unknown intent.
    best_propensity = None if scores.offers is None else best["propensity"] if best else 0.0
    intent = lifecycle.purchase_intent(best_propensity)
    action = lifecycle.next_best_action(
        stage.value,
        churn["risk_level"],
        intent,
        value.tier,
        tenure,
        contract,
        best["product"] if best else None,
        lifecycle.churn_reason(churn["top_factors"]),
    )
    return {
        "customer_id": customer_id,
        "line": line,
        "churn": {
            **age,
            "models": [churn_ref],
            "churn_probability": churn["churn_probability"],
            "risk_level": churn["risk_level"],
            "top_factors": churn["top_factors"],
            "trend": churn_trend,
        },
        "offers": {**age, "models": offers_refs, **offers, "intent": intent},
        "lifecycle": {
            **age,
            "models": [churn_ref],
            "stage": stage.value,
            "name": lifecycle.STAGE_NAMES[stage.value],
            "reason": stage.reason,
        },
        "value": {
            **age,
            # The bill alone is a rule on stored data; lifetime value comes from the churn model's probability.
            "models": [] if value.basis == "bill" else [churn_ref],
            "tier": value.tier,
            "reason": value.reason,
            "basis": value.basis,
            "current_value": value.current_value,
            "lifetime_value": value.lifetime_value,
            "lifetime_value_if_kept": value.lifetime_value_if_kept,
            "expected_months": value.expected_months,
        },
        "next_best_action": {
            **age,
            "models": [churn_ref, *offers_refs],
            "action": action.action,
            "channel": action.channel,
            "script": action.script,
            "intent": intent,
            "risk_level": churn["risk_level"],
            "value_tier": value.tier,
        },
    }


def _field(record: dict[str, Any], name: str | None) -> Any:
    return None if name is None else record.get(name)


def products_scorer_of(models: LoadedModels, line: str | None) -> tuple[Scorer | None, str | None]:
    """The line's product scorer, or why there is none: the offers part then says so and the rest stands."""
    try:
        return models.for_line("products", line), None
    except (ModelNotLoaded, NotFound) as exc:
        return None, exc.message


def _scores_for(
    stored: StoredCustomer,
    key: MemoKey,
    churn_scorer: Scorer,
    products_scorer: Scorer | None,
    memo: ScoreMemo,
) -> ProfileScores:
    """The customer's scores by the served versions: stored by the batch job if they were made from this record
    by these versions, else remembered from an earlier view, else scored now (and remembered)."""
    if stored.scores is not None and stored.scores.key == key[1]:
        metrics.PROFILE_SCORES.labels("stored").inc()
        return ProfileScores(**stored.scores.scores)
    scores = memo.get(key)
    if scores is not None:
        metrics.PROFILE_SCORES.labels("memo").inc()
        return scores
    metrics.PROFILE_SCORES.labels("scored").inc()
    (scores,) = score_profiles(churn_scorer, products_scorer, [stored.record])
    memo.put(key, scores)
    return scores


def score_profiles(
    churn_scorer: Scorer, products_scorer: Scorer | None, records: list[dict[str, Any]]
) -> list[ProfileScores]:
    """The profile scores of each record, in order: churn with reasons, and the top offers."""
    churn = score_customers(churn_scorer, records, explain=True)
    if products_scorer is None:
        return [ProfileScores(result, None) for result in churn]
    # Offers come without reasons here; POST /v1/products/match gives them. (Each was an exact TreeSHAP pass of
    # about 1 ms with XGBoost; with the tables of app/scoring/runtime/treeshap.py, a few hundredths of one.)
    matched = match_products(products_scorer, records, TOP_OFFERS, explain=False)
    return [
        ProfileScores(result, offers["recommendations"])
        for result, offers in zip(churn, matched, strict=True)
    ]
