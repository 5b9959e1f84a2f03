"""The scoring routes: one per registered use case (app/scoring/use_cases/registry.py), each running the one
pipeline. A route validates its body against the use case's request schema and delegates; nothing else."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Response

from app.auth import ScoreScope
from app.dependencies import PipelineDep
from app.error_handlers import error_response_doc
from app.json_io import JsonRoute
from app.scoring.use_cases.base import UseCase
from app.scoring.use_cases.pipeline import ScoringPipeline
from app.scoring.use_cases.registry import USE_CASES

router = APIRouter(dependencies=[ScoreScope], route_class=JsonRoute)


def _route(use_case: UseCase) -> Any:
    async def score(body: Any, pipeline: ScoringPipeline, background: BackgroundTasks) -> Response:
        return await pipeline.run(use_case, body, background)

    # FastAPI reads the body's schema from the signature: each route gets its use case's request model.
    score.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=use_case.request),
            inspect.Parameter("pipeline", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=PipelineDep),
            inspect.Parameter(
                "background", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=BackgroundTasks
            ),
        ],
        return_annotation=Response,
    )
    score.__doc__ = use_case.description
    return score


def _links(use_case: UseCase) -> dict[int | str, dict[str, Any]]:
    """A scored customer of a use case that reads the customer store has a profile (when it is stored)."""
    if not use_case.from_store:
        return {}
    profile = {
        "operationId": "customer_profile",
        "parameters": {"customer_id": "$response.body#/results/0/customer_id"},
    }
    return {200: {"links": {"customer_profile": profile}}}


for _use_case in USE_CASES:
    router.add_api_route(
        _use_case.path,
        _route(_use_case),
        methods=["POST"],
        response_model=_use_case.response,
        summary=_use_case.summary,
        operation_id=_use_case.operation_id,
        tags=[_use_case.name],
        responses={**_links(_use_case), **error_response_doc(401, 403, 404, 413, 422, 503)},
    )
