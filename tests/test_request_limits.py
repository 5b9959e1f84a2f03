"""The key, its scope and the body's size are checked before the body is read (API.md; app/guard.py).

The app is driven as ASGI with a streaming body that counts what was read from it: a refusal must come
without reading the body (or, streamed without a length, without reading past the limit).
`bench/body_limit.py` measures the same through a real uvicorn server with a 50 MB body (time, memory).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI

from app.main import create_app
from app.schemas.churn import TELCO_EXAMPLE as CUSTOMER
from model_registry.registry import ModelRegistry
from tests.conftest import OUTCOMES_ONLY_KEY, SCORE_KEY, make_settings

CHUNK = 64 * 1024
FIFTY_MB = 50 * 1024 * 1024
LIMIT = 256 * 1024


class EndlessBody:
    """receive() of a client sending a 50 MB body in 64 kB chunks; counts what the app pulled."""

    def __init__(self) -> None:
        self.chunks = 0

    async def __call__(self) -> dict[str, Any]:
        if self.chunks == FIFTY_MB // CHUNK:
            return {"type": "http.disconnect"}  # all sent: the client is gone
        self.chunks += 1
        more = self.chunks < FIFTY_MB // CHUNK
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": more}


def call(
    app: FastAPI, path: str, headers: dict[str, str], receive: EndlessBody
) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


@pytest.fixture(scope="module")
def app(registry: ModelRegistry) -> FastAPI:
    # No lifespan: a refusal needs neither the models nor the database.
    return create_app(make_settings(registry, ["clm-churn"], max_body_bytes=LIMIT))


def test_a_large_body_without_a_key_is_a_401_and_not_read(app: FastAPI) -> None:
    body = EndlessBody()
    status, answer = call(app, "/v1/churn/score", {"content-length": str(FIFTY_MB)}, body)
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    assert body.chunks == 0


def test_a_large_body_with_a_key_lacking_the_scope_is_a_403_and_not_read(app: FastAPI) -> None:
    body = EndlessBody()
    headers = {"content-length": str(FIFTY_MB), "x-api-key": OUTCOMES_ONLY_KEY}
    status, answer = call(app, "/v1/churn/score", headers, body)
    assert (status, answer["error"]["code"]) == (403, "forbidden")
    assert body.chunks == 0


def test_a_body_longer_than_the_limit_by_its_length_is_a_413_and_not_read(app: FastAPI) -> None:
    body = EndlessBody()
    headers = {"content-length": str(FIFTY_MB), "x-api-key": SCORE_KEY, "content-type": "application/json"}
    status, answer = call(app, "/v1/churn/score", headers, body)
    assert (status, answer["error"]["code"]) == (413, "body_too_large")
    assert f"{LIMIT:,}" in answer["error"]["message"]
    assert body.chunks == 0


@pytest.mark.parametrize("path", ["/v1/churn/score", "/v1/outcomes"])
def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(app: FastAPI, path: str) -> None:
    body = EndlessBody()
    headers = {"x-api-key": SCORE_KEY, "content-type": "application/json", "transfer-encoding": "chunked"}
    status, answer = call(app, path, headers, body)
    assert (status, answer["error"]["code"]) == (413, "body_too_large")
    assert body.chunks == LIMIT // CHUNK + 1  # the chunk that passed the limit, not one more


def test_a_body_within_the_limit_is_served(app: FastAPI, churn_version: int) -> None:
    from fastapi.testclient import TestClient

    customers = [CUSTOMER] * 300  # ~180 kB: under the 256 kB limit
    with TestClient(app, headers={"X-API-Key": SCORE_KEY}) as client:
        response = client.post("/v1/churn/score", json={"customers": customers, "explain": False})
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 300
