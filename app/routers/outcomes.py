from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from app.auth import OutcomesScope, ScoreScope
from app.dependencies import DatabaseDep, ModelsDep, RequestIdDep, SettingsDep
from app.error_handlers import error_response_doc
from app.json_io import JsonRoute
from app.schemas.outcomes import OutcomesRequest, OutcomesResponse, PerformanceResponse
from app.scoring.batches import check_batch_size
from app.scoring.outcomes import check_items, judge_of, performance_of, store_outcomes

# async routes that hand the database work to the database's own threads (Database.run): a database that hangs
# holds those, never the thread pool that scores batches and answers /metrics.
router = APIRouter(tags=["outcomes"], route_class=JsonRoute)


@router.post(
    "/v1/outcomes",
    response_model=OutcomesResponse,
    summary="Record what happened to scored records: churned, converted, offer accepted (idempotent)",
    operation_id="record_outcomes",
    dependencies=[OutcomesScope],
    responses=error_response_doc(401, 403, 413, 422, 503),
)
async def post_outcomes(
    body: OutcomesRequest,
    settings: SettingsDep,
    models: ModelsDep,
    database: DatabaseDep,
    request_id: RequestIdDep,
) -> OutcomesResponse:
    """Store each fact once: a repeat is a no-op, a different value for the same fact replaces the stored one."""
    check_batch_size(body.outcomes, settings.max_batch, "outcomes")
    check_items(body.outcomes, models)
    counts = await database.run(partial(store_outcomes, database, body.outcomes))
    return OutcomesResponse(
        recorded=counts.recorded,
        unchanged=counts.unchanged,
        corrected=counts.corrected,
        request_id=request_id,
    )


@router.get(
    "/v1/models/{name}/performance",
    response_model=PerformanceResponse,
    summary="Realised ROC AUC, conversion by grade or risk level, and lift of each served version",
    operation_id="model_performance",
    dependencies=[ScoreScope],
    responses=error_response_doc(401, 403, 404, 422, 503),
)
async def get_performance(
    name: str, models: ModelsDep, database: DatabaseDep, request_id: RequestIdDep
) -> PerformanceResponse:
    """Logged scores joined with recorded outcomes, per version that served them."""
    judge = judge_of(name, models)  # an unknown model is a 404 without a database call
    event, versions = await database.run(partial(performance_of, database, name, judge))
    return PerformanceResponse.model_validate(
        {"model": name, "event": event, "versions": versions, "request_id": request_id}
    )
