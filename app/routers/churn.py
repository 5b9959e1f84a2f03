from __future__ import annotations

from functools import partial

from fastapi import APIRouter, BackgroundTasks, Response

from app.auth import ScoreScope
from app.concurrency import run_scoring
from app.dependencies import DatabaseDep, ModelsDep, PredictionLogDep, RequestIdDep, SettingsDep, ShadowDep
from app.errors import error_response_doc
from app.json_io import JsonRoute, results_response
from app.schemas.churn import ChurnRequest, ChurnResponse
from app.scoring.batches import check_batch_size
from app.scoring.customers.store import fill_from_store
from app.scoring.use_cases.churn import CHURN_AGREEMENT, CHURN_MODEL, churn_predictions, score_customers

router = APIRouter(prefix="/v1/churn", tags=["churn"], dependencies=[ScoreScope], route_class=JsonRoute)


@router.post(
    "/score",
    response_model=ChurnResponse,
    summary="Churn probability, risk level and reasons for a batch of customers",
    operation_id="score_churn",
    responses=error_response_doc(401, 403, 404, 413, 422, 503),
)
async def score_churn(
    body: ChurnRequest,
    models: ModelsDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    database: DatabaseDep,
    log_predictions: PredictionLogDep,
    shadow: ShadowDep,
    background: BackgroundTasks,
) -> Response:
    """Score 1–1,000 customers (whole records, or stored customers by `customer_id`); results in request order."""
    check_batch_size(body.customers, settings.max_batch, "customers")
    scorer = models.get(CHURN_MODEL)
    customers = await fill_from_store(database, body.customers, scorer, "customers")
    results = await run_scoring(len(customers), partial(score_customers, scorer, customers, body.explain))
    log_predictions(scorer, churn_predictions(results))
    rescore = partial(score_customers, customers=customers, explain=False)
    shadow.after_response(background, scorer, results, rescore, CHURN_AGREEMENT)
    return results_response(scorer.ref, request_id, results)
