"""The service without its database: it starts, scores by fields, answers what needs the database with a 503
naming it, and recovers by itself; a database that stops answering stalls nothing but the calls that need it.

PostgreSQL is reached through a TCP proxy (tests/tcp_proxy.py) that the tests cut (down: connections refused)
or stall (up, but no byte passes); real server, real sockets, real app.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.schemas.churn import TELCO_EXAMPLE as CUSTOMER
from model_registry.registry import ModelRegistry
from tests.conftest import Databases, load_demo_customers
from tests.test_prediction_log import PostgresOutage, serving

BY_ID = {"customers": [{"customer_id": "7590-VHVEG"}]}
CHURNED = {"outcomes": [{"event": "customer_churned", "record_id": "7590-VHVEG"}]}


@pytest.fixture
def outage(databases: Databases, data_dir: Path) -> PostgresOutage:
    url = databases.new("postgresql")
    load_demo_customers(url, data_dir)
    return PostgresOutage(url)


def calls_needing_the_database(client: TestClient) -> dict[str, Any]:
    return {
        "by id": client.post("/v1/churn/score", json=BY_ID),
        "profile": client.get("/v1/customers/7590-VHVEG/profile"),
        "outcomes": client.post("/v1/outcomes", json=CHURNED),
        "performance": client.get("/v1/models/clm-churn/performance"),
    }


def test_with_postgresql_down_at_start_the_service_starts_scores_by_fields_and_recovers_without_a_restart(
    registry: ModelRegistry, churn_version: int, outage: PostgresOutage
) -> None:
    outage.begin()  # down before the service starts
    with serving(registry, outage.proxy_url, database_connect_timeout=1) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200  # scoring by fields needs no database
        assert ready.json()["database"]["status"] == "unavailable"
        whole = client.post("/v1/churn/score", json={"customers": [CUSTOMER]})
        assert whole.status_code == 200, whole.text
        for name, response in calls_needing_the_database(client).items():
            assert response.status_code == 503, (name, response.text)
            error = response.json()["error"]
            assert error["code"] == "database_unavailable", name
            assert "database" in error["message"], name

        outage.end()
        for name, response in calls_needing_the_database(client).items():
            assert response.status_code == 200, (name, response.text)
        assert client.get("/readyz").json()["database"]["status"] == "ok"


@contextmanager
def resumed_at_the_end(outage: PostgresOutage) -> Iterator[None]:
    try:
        yield
    finally:
        outage.proxy.resume()


def test_a_postgresql_that_stops_answering_stalls_neither_scoring_by_fields_nor_metrics(
    registry: ModelRegistry, churn_version: int, outage: PostgresOutage
) -> None:
    # A call that needs the database waits at most 1 + 1 + 2 s (pool, connect, statement), then is a 503.
    timeouts = {"database_statement_timeout": 2, "database_pool_timeout": 1, "database_connect_timeout": 1}
    batch = {"customers": [CUSTOMER] * 50, "explain": False}  # > 16 records: scored in the thread pool
    with serving(registry, outage.proxy_url, **timeouts) as client:
        assert client.post("/v1/churn/score", json=BY_ID).status_code == 200  # pooled connections
        outage.proxy.stall()
        with ThreadPoolExecutor(64) as pool, resumed_at_the_end(outage):
            # More calls hanging on the database than the shared thread pool has threads (40).
            stuck = [pool.submit(client.post, "/v1/churn/score", json=BY_ID) for _ in range(48)]
            stuck += [pool.submit(client.post, "/v1/outcomes", json=CHURNED) for _ in range(8)]
            by_fields = [pool.submit(client.post, "/v1/churn/score", json=batch) for _ in range(8)]
            scrapes = [pool.submit(client.get, "/metrics") for _ in range(4)]
            ready = pool.submit(client.get, "/readyz")
            for done in [*by_fields, *scrapes]:
                assert done.result(timeout=60).status_code == 200  # before the fix: starved, never answered
            # Everything that needs no database was answered while every call that needs it still waited.
            assert not any(call.done() for call in stuck)
            assert ready.result(timeout=60).status_code == 200
            assert ready.result().json()["database"]["status"] == "unavailable"
            answers = [call.result(timeout=60) for call in stuck]
        assert {r.status_code for r in answers} == {503}
        assert {r.json()["error"]["code"] for r in answers} == {"database_unavailable"}
        outage.proxy.resume()
        assert client.post("/v1/churn/score", json=BY_ID).status_code == 200
