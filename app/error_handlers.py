"""One error envelope for every 4xx/5xx: {"error": {"code", "message", "details"}} (API.md); the Open Inference
Protocol's routes (/v2) answer in that protocol's shape, {"error": "<message>"}."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import DatabaseUnavailable, ServiceError
from app.schemas.common import ErrorBody

log = logging.getLogger(__name__)


def envelope(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details or []}},
        headers=headers,
    )


# The Open Inference Protocol's routes answer errors in the protocol's shape, {"error": "<message>"}.
OPEN_INFERENCE_PREFIX = "/v2"
_DETAILS_IN_MESSAGE = 10


def error_response(
    path: str,
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error in the shape of the protocol the path speaks: the envelope, or the Open Inference Protocol's
    one message (the details' paths and messages appended to it)."""
    if not path.startswith(OPEN_INFERENCE_PREFIX):
        return envelope(status, code, message, details, headers)
    named = [f"{d['path']}: {d['message']}" for d in (details or [])[:_DETAILS_IN_MESSAGE]]
    text = f"{message} ({'; '.join(named)})" if named else message
    return JSONResponse(status_code=status, content={"error": text}, headers=headers)


def error_response_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a route's declared error responses."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


def validation_path(loc: tuple[int | str, ...]) -> str:
    """('body', 'customers', 3, 'tenure') -> customers[3].tenure"""
    path = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(request.url.path, exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [validation_detail(e) for e in exc.errors()]
        path = request.url.path
        # A body outside the Open Inference Protocol's schema is its 400 (Triton's and KServe's answer).
        status = 400 if path.startswith(OPEN_INFERENCE_PREFIX) else 422
        return error_response(
            path, status, "validation_error", f"{len(details)} field(s) are invalid", details
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path
        if exc.status_code == 400:
            # FastAPI's own word for a body it cannot parse (not UTF-8, nested too deep): invalid input too.
            return error_response(
                path,
                400 if path.startswith(OPEN_INFERENCE_PREFIX) else 422,
                "invalid_body",
                "the request body is not readable JSON",
                [{"path": "body", "message": str(exc.detail)}],
            )
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            exc.status_code, "http_error"
        )
        # The router's own headers go along: a 405 names the methods the path takes in `Allow` (RFC 9110).
        return error_response(path, exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        # The database is unreachable or refusing connections: a condition to retry, not a bug.
        log.warning("database unavailable: %s", type(exc).__name__)
        error = DatabaseUnavailable("the database is unavailable; retry shortly")
        return error_response(request.url.path, error.status_code, error.code, error.message)

    # Unexpected exceptions are answered by ObservabilityMiddleware, where the request id is still known.


def validation_detail(error: Mapping[str, Any]) -> dict[str, str]:
    """One of pydantic's errors as a detail of the envelope: the field's path (customers[3].tenure), the message."""
    if error["type"] == "json_invalid":  # its loc is a byte offset, not a field
        position = error["loc"][-1]
        return {"path": "body", "message": f"invalid JSON at byte {position}: {error['ctx']['error']}"}
    return {"path": validation_path(tuple(error["loc"])), "message": error["msg"]}


_DESCRIPTIONS = {
    401: "Missing or unknown API key",
    403: "The key lacks the scope",
    404: "Not found",
    409: "The version the alias points to was refused (failed to load or to score its example)",
    413: "Batch or body over the limit",
    422: "Invalid input; one detail per bad field, with its path",
    503: "No model loaded for the route, the registry or the database unavailable",
}
