from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.auth import ScoreScope
from app.dependencies import ModelsDep, PredictionLogDep, ProfileMemoDep, RequestIdDep, SessionDep
from app.errors import error_response_doc
from app.json_io import scoring_response
from app.schemas.customers import ProfileResponse
from app.scoring.profile import build_profile

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[ScoreScope])


@router.get(
    "/{customer_id}/profile",
    response_model=ProfileResponse,
    summary="A stored customer in one look: churn risk, offers, lifecycle stage, value tier, next best action",
    operation_id="customer_profile",
    responses=error_response_doc(401, 403, 404, 503),
)
def customer_profile(
    customer_id: Annotated[str, Path(max_length=64)],
    models: ModelsDep,
    session: SessionDep,
    request_id: RequestIdDep,
    log_predictions: PredictionLogDep,
    memo: ProfileMemoDep,
) -> Response:
    """The call-centre view of one customer, scored from its stored record by the served versions."""
    profile = build_profile(session, models, memo, customer_id, log_predictions)
    return scoring_response({**profile, "request_id": request_id})
