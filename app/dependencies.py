"""Annotated dependencies: what routes read from the lifespan state and the request context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.observability import request_id_var
from app.scoring.loaded import LoadedModels
from app.scoring.shadow import ShadowScoring
from app.settings import Settings


def _models(request: Request) -> LoadedModels:
    return request.state.models  # type: ignore[no-any-return]


def _shadow(request: Request) -> ShadowScoring:
    return request.state.shadow  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.state.settings  # type: ignore[no-any-return]


def _request_id() -> str:
    return request_id_var.get()


ModelsDep = Annotated[LoadedModels, Depends(_models)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ShadowDep = Annotated[ShadowScoring, Depends(_shadow)]
RequestIdDep = Annotated[str, Depends(_request_id)]
