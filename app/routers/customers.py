from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator

from app.auth import ScoreScope
from app.concurrency import read_database
from app.dependencies import (
    DatabaseDep,
    ModelsDep,
    PredictionLogDep,
    ProfileMemoDep,
    RequestIdDep,
    SettingsDep,
)
from app.error_handlers import error_response_doc
from app.json_io import scoring_response
from app.schemas.customers import ProfileResponse
from app.scoring.customers import trend
from app.scoring.customers.profile import build_profile, found, stored_read
from app.text import NO_NUL, storable

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[ScoreScope])


@router.get(
    "/{customer_id}/profile",
    response_model=ProfileResponse,
    summary="A stored customer in one look: churn risk, offers, lifecycle stage, value tier, next best action",
    operation_id="customer_profile",
    responses=error_response_doc(401, 403, 404, 422, 503),
)
async def customer_profile(
    customer_id: Annotated[
        str, Path(max_length=128, json_schema_extra={"pattern": NO_NUL}), AfterValidator(storable)
    ],
    models: ModelsDep,
    database: DatabaseDep,
    request_id: RequestIdDep,
    log_predictions: PredictionLogDep,
    memo: ProfileMemoDep,
    settings: SettingsDep,
    line: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            json_schema_extra={"pattern": NO_NUL},  # checked by storable(), which says why
            description="The churn line the customer belongs to (loaded by `clm ingest customers --line`); "
            "absent: the default line.",
        ),
        AfterValidator(storable),
    ] = None,
) -> Response:
    """The call-centre view of one customer, scored from its stored record by the served versions."""
    churn_model = models.for_line("churn", line).name  # an unknown line is a 404 before the store is read
    # The customer and its churn score's history (read before this view logs its own score): one round trip.
    history = settings.score_trend_scorings * trend.READ_PER_SCORING
    read = stored_read(customer_id, line, churn_model, history)
    stored = found(await read_database(database, 1, read), customer_id, line)
    churn_trend = trend.trend_of(
        stored.score_history,
        scorings=settings.score_trend_scorings,
        min_slope=settings.score_trend_min_slope,
    )
    # One customer: scored on the event loop (app/concurrency.py).
    profile = build_profile(stored, line, models, memo, log_predictions, churn_trend)
    return scoring_response({**profile, "request_id": request_id})
