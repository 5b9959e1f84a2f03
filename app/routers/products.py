"""POST /v1/products/match: cross-sell offers per customer."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, BackgroundTasks, Response

from app.auth import ScoreScope
from app.concurrency import run_scoring
from app.dependencies import DatabaseDep, ModelsDep, PredictionLogDep, RequestIdDep, SettingsDep, ShadowDep
from app.errors import error_response_doc
from app.json_io import JsonRoute, results_response
from app.schemas.products import ProductMatchRequest, ProductMatchResponse
from app.scoring.batches import check_batch_size
from app.scoring.customers.store import fill_from_store
from app.scoring.use_cases.products import PRODUCTS_MODEL, compare_offers, match_products, product_predictions

router = APIRouter(prefix="/v1/products", tags=["products"], dependencies=[ScoreScope], route_class=JsonRoute)


@router.post(
    "/match",
    response_model=ProductMatchResponse,
    summary="The best add-on offers for a batch of customers, with reasons",
    operation_id="match_products",
    responses=error_response_doc(401, 403, 404, 413, 422, 503),
)
async def match(
    body: ProductMatchRequest,
    models: ModelsDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    database: DatabaseDep,
    log_predictions: PredictionLogDep,
    shadow: ShadowDep,
    background: BackgroundTasks,
) -> Response:
    """Rank the products each customer lacks and may buy (whole records or stored ids); in request order."""
    check_batch_size(body.customers, settings.max_batch, "customers")
    scorer = models.get(PRODUCTS_MODEL)
    customers = await fill_from_store(database, body.customers, scorer, "customers")
    results = await run_scoring(
        len(customers), partial(match_products, scorer, customers, body.top_n, body.explain)
    )
    log_predictions(scorer, product_predictions(results))
    rescore = partial(match_products, customers=customers, top_n=body.top_n, explain=False)
    shadow.after_response(background, scorer, results, rescore, compare_offers)
    return results_response(scorer.ref, request_id, results)
