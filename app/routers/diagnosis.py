from __future__ import annotations

from functools import partial

from fastapi import APIRouter, BackgroundTasks, Response

from app.auth import ScoreScope
from app.concurrency import run_scoring
from app.dependencies import ModelsDep, PredictionLogDep, RequestIdDep, SettingsDep, ShadowDep
from app.errors import error_response_doc
from app.json_io import JsonRoute, results_response
from app.schemas.diagnosis import DiagnosisRequest, DiagnosisResponse
from app.scoring.batches import check_batch_size
from app.scoring.use_cases.diagnosis import (
    DIAGNOSIS_MODEL,
    compare_findings,
    diagnose_listings,
    diagnosis_predictions,
)

router = APIRouter(prefix="/v1", tags=["diagnosis"], dependencies=[ScoreScope], route_class=JsonRoute)


@router.post(
    "/diagnosis",
    response_model=DiagnosisResponse,
    summary="Gaps of marketplace listings against the top performers of their segment",
    operation_id="diagnose_listings",
    responses=error_response_doc(401, 403, 413, 422, 503),
)
async def diagnose(
    body: DiagnosisRequest,
    models: ModelsDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    log_predictions: PredictionLogDep,
    shadow: ShadowDep,
    background: BackgroundTasks,
) -> Response:
    """Diagnose 1–1,000 listings with the champion effect model; results in request order, gaps biggest first."""
    check_batch_size(body.listings, settings.max_batch, "listings")
    scorer = models.get(DIAGNOSIS_MODEL)
    results = await run_scoring(len(body.listings), partial(diagnose_listings, scorer, body.listings))
    log_predictions(scorer, diagnosis_predictions(results))
    shadow.after_response(
        background, scorer, results, partial(diagnose_listings, listings=body.listings), compare_findings
    )
    return results_response(scorer.ref, request_id, results)
