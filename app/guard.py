"""RequestGuard: the API key, its scope and the body's size are checked before any route reads the body.

A pure ASGI middleware (BaseHTTPMiddleware would buffer and re-wrap the stream). The scope a route needs is read
from the route itself (its `require(...)` dependency, app/auth.py), so the routers stay the one place that says
it. A body over `max_body_bytes` is refused with 413 from its Content-Length before anything is read, or, sent
without one (chunked), as soon as the bytes received pass the limit; the rest is never read by the app (uvicorn
discards what the client still sends).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import KeyRing, required_scope
from app.error_handlers import error_response
from app.errors import ServiceError
from app.settings import Scope as KeyScope

_KEY_HEADER = b"x-api-key"
_LENGTH_HEADER = b"content-length"


class BodyTooLarge(HTTPException):
    """Raised from receive() when a streamed body passes the limit: FastAPI lets an HTTPException through to the
    error handlers (any other exception while reading a body becomes a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit:,} bytes")


def body_too_large_response(path: str, limit: int) -> Any:
    return error_response(
        path, 413, "body_too_large", f"the request body is over the limit of {limit:,} bytes"
    )


class RequestGuard:
    def __init__(self, app: ASGIApp, router: Router, keys: KeyRing, max_body_bytes: int) -> None:
        self.app = app
        self.router = router
        self.keys = keys
        self.max_body_bytes = max_body_bytes
        self._routes: _RouteTable | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        route, needed = self._route_of(scope)
        if needed is not None:
            try:
                key = headers.get(_KEY_HEADER)
                self.keys.check(key.decode("latin-1") if key is not None else None, needed)
            except ServiceError as refused:
                scope["route"] = route  # labels the access log and metrics with the route template
                await error_response(scope["path"], refused.status_code, refused.code, refused.message)(
                    scope, receive, send
                )
                return
        limit = self.max_body_bytes
        length = headers.get(_LENGTH_HEADER)
        if length is not None and length.isdigit() and int(length) > limit:
            if route is not None:
                scope["route"] = route
            await body_too_large_response(scope["path"], limit)(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_tracking)
        except BodyTooLarge:
            # Read outside a route (FastAPI answers it from inside one): answered here all the same.
            if started:
                raise
            await body_too_large_response(scope["path"], limit)(scope, receive, send)

    def _route_of(self, scope: Scope) -> tuple[BaseRoute | None, KeyScope | None]:
        """The route the router will pick (a full match first, as Starlette's router does) and its scope.

        Matched here by each route's path and methods, read once: through FastAPI's route objects a match cost
        40-120 us a request, as much as a stored profile's query. A path without parameters is looked up; the
        others' regexes are tried in the router's order (the service's fixed and parametrised paths never
        overlap, so looking the fixed ones up first picks the router's route)."""
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # as Starlette's router sees it behind a prefix
            path = path[len(root) :]
        method = scope["method"]
        table = self._table()
        partial: tuple[BaseRoute, KeyScope | None] | None = None
        for regex, methods, route, needed in table.fixed.get(path, table.parametrised):
            if regex.match(path) is None:
                continue
            if not methods or method in methods:
                return route, needed
            if partial is None:
                partial = (route, needed)
        return partial or (None, None)

    def _table(self) -> _RouteTable:
        """Every route as the router sees it (included routers flattened, their prefixes and dependencies
        applied), with the scope its dependencies require; built at the first request, when all are added."""
        if self._routes is None:
            table = _RouteTable()
            for context in iter_route_contexts(self.router.routes):
                regex = getattr(context, "path_regex", None)
                if regex is None:  # not a plain route (a mount, a host): nothing of ours, no scope
                    continue
                needed = _scope_of(getattr(context, "dependencies", []))  # a plain Starlette route has none
                entry = (regex, context.methods, context.original_route, needed)
                if context.param_convertors or context.path is None:
                    table.parametrised.append(entry)
                else:
                    table.fixed.setdefault(context.path, []).append(entry)
            self._routes = table
        return self._routes


_Entry = tuple[re.Pattern[str], set[str] | None, BaseRoute, KeyScope | None]


@dataclass
class _RouteTable:
    fixed: dict[str, list[_Entry]] = field(default_factory=dict)
    parametrised: list[_Entry] = field(default_factory=list)


def _scope_of(dependencies: list[Any]) -> KeyScope | None:
    found = None
    for dependency in dependencies:
        found = required_scope(dependency) or found
    return found
