from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import AfterValidator

from app.auth import ScoreScope
from app.concurrency import run_database
from app.dependencies import DatabaseDep, ModelsDep, PredictionLogDep, ProfileMemoDep, RequestIdDep
from app.errors import error_response_doc
from app.json_io import scoring_response
from app.schemas.customers import ProfileResponse
from app.scoring.customers.profile import build_profile, read_stored
from app.text import storable

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[ScoreScope])


@router.get(
    "/{customer_id}/profile",
    response_model=ProfileResponse,
    summary="A stored customer in one look: churn risk, offers, lifecycle stage, value tier, next best action",
    operation_id="customer_profile",
    responses=error_response_doc(401, 403, 404, 503),
)
async def customer_profile(
    customer_id: Annotated[str, Path(max_length=64), AfterValidator(storable)],
    models: ModelsDep,
    database: DatabaseDep,
    request_id: RequestIdDep,
    log_predictions: PredictionLogDep,
    memo: ProfileMemoDep,
) -> Response:
    """The call-centre view of one customer, scored from its stored record by the served versions."""
    stored = await run_database(database, 1, partial(read_stored, database, customer_id))
    # One customer: scored on the event loop (app/concurrency.py).
    profile = build_profile(stored, models, memo, log_predictions)
    return scoring_response({**profile, "request_id": request_id})
