from __future__ import annotations

from functools import partial

from fastapi import APIRouter, BackgroundTasks, Response

from app.auth import ScoreScope
from app.concurrency import run_scoring
from app.dependencies import ModelsDep, PredictionLogDep, RequestIdDep, SettingsDep, ShadowDep
from app.errors import error_response_doc
from app.json_io import JsonRoute, results_response
from app.schemas.leads import LeadsRequest, LeadsResponse, RankRequest, RankResponse
from app.scoring.batches import check_batch_size
from app.scoring.use_cases.leads import (
    LEADS_AGREEMENT,
    lead_predictions,
    line_scorer,
    rank_leads,
    score_leads,
)

router = APIRouter(prefix="/v1/leads", tags=["leads"], dependencies=[ScoreScope], route_class=JsonRoute)


@router.post(
    "/score",
    response_model=LeadsResponse,
    summary="Conversion probability, score, grade and reasons for a batch of leads of one line",
    operation_id="score_leads",
    responses=error_response_doc(401, 403, 404, 413, 422, 503),
)
async def score(
    body: LeadsRequest,
    models: ModelsDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    log_predictions: PredictionLogDep,
    shadow: ShadowDep,
    background: BackgroundTasks,
) -> Response:
    """Score 1–1,000 leads with the line's champion model; results come in request order."""
    check_batch_size(body.leads, settings.max_batch, "leads")
    scorer = line_scorer(models, body.line)
    results = await run_scoring(len(body.leads), partial(score_leads, scorer, body.leads, body.explain))
    log_predictions(scorer, lead_predictions(scorer, results))
    rescore = partial(score_leads, leads=body.leads, explain=False)
    shadow.after_response(background, scorer, results, rescore, LEADS_AGREEMENT)
    return results_response(scorer.ref, request_id, results)


@router.post(
    "/rank",
    response_model=RankResponse,
    summary="Rank a pool of leads of one line, best first, with score, grade and reasons",
    operation_id="rank_leads",
    responses=error_response_doc(401, 403, 404, 413, 422, 503),
)
async def rank(
    body: RankRequest,
    models: ModelsDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    log_predictions: PredictionLogDep,
) -> Response:
    """Rank 1–1,000 leads by conversion probability (ties in request order) and return the best top_k."""
    check_batch_size(body.leads, settings.max_batch, "leads")
    scorer = line_scorer(models, body.line)
    results = await run_scoring(
        len(body.leads), partial(rank_leads, scorer, body.leads, body.explain, body.top_k)
    )
    log_predictions(scorer, lead_predictions(scorer, results))  # the top_k returned: the scores served
    return results_response(scorer.ref, request_id, results)
