"""API keys with scopes (API.md): missing or unknown key 401, key without the scope 403.

Keys are held by their SHA-256 digest only (`Settings.key_scopes`): a key given in clear is hashed at start, and
a deployment may give digests alone. A presented key is hashed and looked up; comparing digests leaks nothing
about a key through timing. RequestGuard (app/guard.py) checks the key before the body is read; the route's
dependency checks it again (cheap: one hash) and declares the security scheme in the OpenAPI document.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from app.errors import Forbidden, Unauthorized
from app.settings import Scope, Settings

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key; scopes: score, outcomes, admin"
)


class KeyRing:
    """The accepted keys by digest, with their scopes."""

    def __init__(self, scopes_by_digest: dict[str, frozenset[Scope]]) -> None:
        self._scopes = scopes_by_digest

    @classmethod
    def of(cls, settings: Settings) -> KeyRing:
        return cls(settings.key_scopes())

    def check(self, key: str | None, scope: Scope) -> None:
        """Raise Unauthorized (no or unknown key) or Forbidden (a key without `scope`)."""
        if not key:
            raise Unauthorized("send your API key in the X-API-Key header")
        scopes = self._scopes.get(hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest())
        if scopes is None:
            raise Unauthorized("unknown API key")
        if scope not in scopes:
            raise Forbidden(f"this key lacks the {scope!r} scope")


def require(scope: Scope) -> Any:
    """A dependency that lets a request through only with a key holding `scope` (async: no thread hop).

    The scope is also an attribute of the dependency, where RequestGuard reads it for the route: the routers'
    `dependencies=[...]` are the one place that says which scope a route needs."""

    async def check(request: Request, key: Annotated[str | None, Depends(_api_key_header)]) -> None:
        keys: KeyRing = request.state.keys
        keys.check(key, scope)

    check.required_scope = scope  # type: ignore[attr-defined]
    return Depends(check)


def required_scope(dependency: Any) -> Scope | None:
    """The scope a route dependency made by require() asks for, else None."""
    return getattr(getattr(dependency, "dependency", None), "required_scope", None)


ScoreScope = require("score")
OutcomesScope = require("outcomes")
AdminScope = require("admin")
