"""API keys with scopes (API.md): missing or unknown key 401, key without the scope 403."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from app.errors import Forbidden, Unauthorized
from app.settings import Scope

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key; scopes: score, admin"
)


def _scopes_of(request: Request, key: str | None) -> list[Scope]:
    if not key:
        raise Unauthorized("send your API key in the X-API-Key header")
    for known, scopes in request.state.settings.api_keys.items():
        if secrets.compare_digest(known.encode(), key.encode()):
            return scopes  # type: ignore[no-any-return]
    raise Unauthorized("unknown API key")


def require(scope: Scope) -> Any:
    """A dependency that lets a request through only with a key holding `scope` (async: no thread hop)."""

    async def check(request: Request, key: Annotated[str | None, Depends(_api_key_header)]) -> None:
        if scope not in _scopes_of(request, key):
            raise Forbidden(f"this key lacks the {scope!r} scope")

    return Depends(check)


ScoreScope = require("score")
AdminScope = require("admin")
