"""RequestGuard: the API key, its scope and the body's size are checked before any route reads the body.

A pure ASGI middleware (BaseHTTPMiddleware would buffer and re-wrap the stream). The scope a route needs is read
from the route itself (its `require(...)` dependency, app/auth.py), so the routers stay the one place that says
it. A body over `max_body_bytes` is refused with 413 from its Content-Length before anything is read, or, sent
without one (chunked), as soon as the bytes received pass the limit; the rest is never read by the app (uvicorn
discards what the client still sends).
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import KeyRing, required_scope
from app.errors import ServiceError, envelope
from app.settings import Scope as KeyScope

_KEY_HEADER = b"x-api-key"
_LENGTH_HEADER = b"content-length"


class BodyTooLarge(HTTPException):
    """Raised from receive() when a streamed body passes the limit: FastAPI lets an HTTPException through to the
    error handlers (any other exception while reading a body becomes a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit:,} bytes")


def body_too_large_response(limit: int) -> Any:
    return envelope(413, "body_too_large", f"the request body is over the limit of {limit:,} bytes")


class RequestGuard:
    def __init__(self, app: ASGIApp, router: Router, keys: KeyRing, max_body_bytes: int) -> None:
        self.app = app
        self.router = router
        self.keys = keys
        self.max_body_bytes = max_body_bytes
        self._routes: list[tuple[Any, BaseRoute, KeyScope | None]] | None = None

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
                await envelope(refused.status_code, refused.code, refused.message)(scope, receive, send)
                return
        limit = self.max_body_bytes
        length = headers.get(_LENGTH_HEADER)
        if length is not None and length.isdigit() and int(length) > limit:
            if route is not None:
                scope["route"] = route
            await body_too_large_response(limit)(scope, receive, send)
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
            await body_too_large_response(limit)(scope, receive, send)

    def _route_of(self, scope: Scope) -> tuple[BaseRoute | None, KeyScope | None]:
        """The route the router will pick (a full match first, as Starlette's router does) and its scope."""
        partial: tuple[BaseRoute, KeyScope | None] | None = None
        for context, original, needed in self._table():
            match, _ = context.matches(scope)
            if match is Match.FULL:
                return original, needed
            if match is Match.PARTIAL and partial is None:
                partial = (original, needed)
        return partial or (None, None)

    def _table(self) -> list[tuple[Any, BaseRoute, KeyScope | None]]:
        """Every route as the router sees it (included routers flattened, their prefixes and dependencies
        applied), with the scope its dependencies require; built at the first request, when all are added."""
        if self._routes is None:
            self._routes = [
                (context, context.original_route, _scope_of(getattr(context, "dependencies", [])))
                for context in iter_route_contexts(self.router.routes)
            ]
        return self._routes


def _scope_of(dependencies: list[Any]) -> KeyScope | None:
    found = None
    for dependency in dependencies:
        found = required_scope(dependency) or found
    return found
