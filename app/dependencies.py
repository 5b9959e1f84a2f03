"""Annotated dependencies: what routes read from the lifespan state and the request context.

They are `async def` although they do no I/O: FastAPI runs a sync dependency in the threadpool, and a thread
hop per dependency per request costs more than the scoring of one record.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.db import Database
from app.observability import request_id_var
from app.prediction_log import RequestPredictions
from app.scoring.customers.profile import ScoreMemo
from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.shadow import ShadowScoring
from app.scoring.use_cases.pipeline import ScoringPipeline
from app.settings import Settings


async def _models(request: Request) -> LoadedModels:
    return request.state.models  # type: ignore[no-any-return]


async def _shadow(request: Request) -> ShadowScoring:
    return request.state.shadow  # type: ignore[no-any-return]


async def _settings(request: Request) -> Settings:
    return request.state.settings  # type: ignore[no-any-return]


async def _request_id() -> str:
    return request_id_var.get()


ModelsDep = Annotated[LoadedModels, Depends(_models)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ShadowDep = Annotated[ShadowScoring, Depends(_shadow)]
RequestIdDep = Annotated[str, Depends(_request_id)]


async def _database(request: Request) -> Database:
    return request.state.database  # type: ignore[no-any-return]


async def _prediction_log(request: Request) -> RequestPredictions:
    # async: it only reads the request, so it runs in the event loop instead of taking a threadpool hop.
    return RequestPredictions(request.state.prediction_log, request.scope["route"].path, request_id_var.get())


async def _profile_memo(request: Request) -> ScoreMemo:
    return request.state.profile_memo  # type: ignore[no-any-return]


# Routes reach the database through Database.run (its own threads, a deadline) or app/concurrency.py's
# run_database: never a session dependency, which would hold a thread of the shared pool while the database hangs.
DatabaseDep = Annotated[Database, Depends(_database)]
PredictionLogDep = Annotated[RequestPredictions, Depends(_prediction_log)]
ProfileMemoDep = Annotated[ScoreMemo, Depends(_profile_memo)]


async def _pipeline(request: Request) -> ScoringPipeline:
    """The scoring pipeline bound to this request: one dependency for what every scoring route needs."""
    state = request.state
    request_id = request_id_var.get()
    return ScoringPipeline(
        models=state.models,
        database=state.database,
        shadow=state.shadow,
        max_batch=state.settings.max_batch,
        log=RequestPredictions(state.prediction_log, request.scope["route"].path, request_id),
        request_id=request_id,
    )


PipelineDep = Annotated[ScoringPipeline, Depends(_pipeline)]
