"""Annotated dependencies: what routes read from the lifespan state and the request context.

They are `async def` although they do no I/O: FastAPI runs a sync dependency in the threadpool, and a thread
hop per dependency per request costs more than the scoring of one record.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.observability import request_id_var
from app.scoring.loaded import LoadedModels
from app.scoring.shadow import ShadowScoring
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
