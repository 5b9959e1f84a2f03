"""Customer–product matching: for each customer, the products it may buy and lacks, ranked by propensity.

What may be offered is decided by the version's own catalogue (metadata["products"]), never by code here: a
product is a candidate only when its eligibility rule admits the customer and its field is exactly the
"not owned" value. An absent or null product field, or an absent or null eligibility field, rules the product
out: the service does not offer what the customer may already have or cannot buy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from app import metrics
from app.prediction_log import Prediction
from app.schemas.products import ProductMatchRequest, ProductMatchResponse
from app.scoring.runtime.scorer import Scorer
from app.scoring.use_cases.base import UseCase
from model_registry.catalogue import ProductCatalogue, hide_fields

PRODUCTS_MODEL = "clm-products"


def compare_offers(champion: dict[str, Any], challenger: dict[str, Any]) -> tuple[list[float], bool]:
    """Shadow scoring's comparison for one customer: the propensity differences of the products both versions
    offer, and whether the first offer (the one an agent makes) changes."""
    theirs = {offer["product"]: offer["propensity"] for offer in challenger["recommendations"]}
    differences = [
        abs(offer["propensity"] - theirs[offer["product"]])
        for offer in champion["recommendations"]
        if offer["product"] in theirs
    ]
    return differences, _first_offer(champion) != _first_offer(challenger)


def _first_offer(result: dict[str, Any]) -> str | None:
    return result["recommendations"][0]["product"] if result["recommendations"] else None


def match_products(
    scorer: Scorer, customers: list[dict[str, Any]], top_n: int, explain: bool
) -> list[dict[str, Any]]:
    """One result per customer, in request order: up to `top_n` offers, highest propensity first."""
    # Parsed per call: seven small rules cost microseconds and the scorer stays a plain loaded version.
    catalogue = scorer.catalogue
    matrix = scorer.encode(customers, "customers")
    offers: list[list[dict[str, Any]]] = [[] for _ in customers]
    # A booster never saw its hidden fields (always missing in training), so its scores do not depend on them
    # (tests/test_products_training.py): all boosters can score the one unhidden matrix. Reasons below use the
    # hidden matrix, so they never name a field the booster did not see.
    propensities = scorer.probabilities_by_booster(matrix)
    for product in catalogue.products:
        rows = [row for row, customer in enumerate(customers) if product.may_offer(customer)]
        if not rows:
            continue
        for row, propensity in zip(rows, propensities[product.name][rows].tolist(), strict=True):
            offers[row].append(
                {"product": product.name, "propensity": round(propensity, 6), "top_factors": None}
            )

    for customer_offers in offers:
        customer_offers.sort(key=lambda offer: -offer["propensity"])
        del customer_offers[top_n:]
        for rank, offer in enumerate(customer_offers, start=1):
            offer["rank"] = rank
    if explain:
        _explain(scorer, catalogue, matrix, customers, offers)
    _observe(scorer, customers, offers)
    return [
        {"customer_id": customer.get(scorer.id_field), "recommendations": customer_offers}
        for customer, customer_offers in zip(customers, offers, strict=True)
    ]


def _explain(
    scorer: Scorer,
    catalogue: ProductCatalogue,
    matrix: npt.NDArray[np.float32],
    customers: list[dict[str, Any]],
    offers: list[list[dict[str, Any]]],
) -> None:
    """Reasons from each offered product's own booster, computed only for the offers that made the cut, on the
    matrix with the product's own fields hidden (so a reason never names a field the booster did not see)."""
    for product in catalogue.products:
        rows = [row for row, kept in enumerate(offers) if any(o["product"] == product.name for o in kept)]
        if not rows:
            continue
        hidden = hide_fields(matrix[rows], scorer.bundle.contract, product.hidden_fields)
        factors = scorer.top_factors(hidden, [customers[row] for row in rows], product.name)
        for row, reasons in zip(rows, factors, strict=True):
            next(o for o in offers[row] if o["product"] == product.name)["top_factors"] = reasons


def _observe(scorer: Scorer, customers: list[dict[str, Any]], offers: list[list[dict[str, Any]]]) -> None:
    version = str(scorer.version)
    metrics.SCORED_RECORDS.labels(scorer.name, version).inc(len(customers))
    for customer_offers in offers:
        if not customer_offers:
            metrics.PRODUCT_NO_OFFER.labels(scorer.name, version).inc()
        for offer in customer_offers:
            metrics.PRODUCT_OFFERS.labels(scorer.name, version, offer["product"], str(offer["rank"])).inc()
            metrics.PRODUCT_PROPENSITY.labels(scorer.name, version, offer["product"]).observe(
                offer["propensity"]
            )


def product_predictions(results: list[dict[str, Any]]) -> list[Prediction]:
    """What the prediction log keeps: one row per offer returned, the product as its item."""
    return [
        Prediction(result["customer_id"], offer["propensity"], item=offer["product"])
        for result in results
        for offer in result["recommendations"]
    ]


PRODUCTS = UseCase(
    name="products",
    path="/v1/products/match",
    operation_id="match_products",
    summary="The best add-on offers for a batch of customers, with reasons",
    description="Rank the products each customer lacks and may buy (whole records or stored ids); in request "
    "order.",
    request=ProductMatchRequest,
    response=ProductMatchResponse,
    records_field="customers",
    score=lambda scorer, customers, body: match_products(scorer, customers, body.top_n, body.explain),
    predictions=lambda _, results: product_predictions(results),
    compare=compare_offers,
    from_store=True,
)
