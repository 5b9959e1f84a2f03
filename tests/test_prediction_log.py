"""The prediction log on SQLite and PostgreSQL: every score served becomes one row, written off the request path,
kept through a database outage, flushed at shutdown, and counted when it cannot be kept."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import make_url, select

from app.db import Database
from app.ids import UniqueIds
from app.main import create_app
from app.models import PredictionRow
from app.prediction_log import Prediction, PredictionLog
from app.repositories import predictions
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_KEY, make_settings
from tests.tcp_proxy import TcpProxy
from training.data import load_dataset
from training.spec import find_spec


@pytest.fixture(scope="module")
def customers(data_dir: Path) -> list[dict[str, Any]]:
    dataset = load_dataset(find_spec("churn"), data_dir)
    return [{"customer_id": i, **r} for i, r in zip(dataset.ids[:400], dataset.records()[:400], strict=True)]


@contextmanager
def serving(
    registry: ModelRegistry, database_url: str, models: tuple[str, ...] = ("clm-churn",), **settings: Any
) -> Iterator[TestClient]:
    app = create_app(make_settings(registry, list(models), database_url=database_url, **settings))
    with TestClient(app) as client:
        client.headers["X-API-Key"] = SCORE_KEY
        yield client


def logged(database_url: str) -> list[PredictionRow]:
    database = Database(database_url)
    try:
        with database.session() as session:
            return list(session.scalars(select(PredictionRow)))
    finally:
        database.dispose()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting after {timeout:.0f} s: {what}")
        time.sleep(0.05)


def score_batches(client: TestClient, batches: list[list[dict[str, Any]]]) -> int:
    """Send the batches 8 at a time; every request must succeed. Returns the scores served."""

    def one(batch: list[dict[str, Any]]) -> int:
        response = client.post("/v1/churn/score", json={"customers": batch, "explain": False})
        assert response.status_code == 200, response.text
        return len(response.json()["results"])

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(one, batches))


def test_every_score_served_is_one_row_with_route_model_version_and_request_id(
    registry: ModelRegistry, churn_version: int, database_url: str, customers: list[dict[str, Any]]
) -> None:
    request_id = uuid.uuid4().hex
    with serving(registry, database_url, prediction_log_interval=0.05) as client:
        response = client.post(
            "/v1/churn/score", json={"customers": customers[:3]}, headers={"X-Request-ID": request_id}
        )
        results = response.json()["results"]
        wait_until(lambda: client.app_state["prediction_log"].pending == 0, "the log to be written")

    rows = {r.record_id: r for r in logged(database_url)}
    assert {i: (r.score, r.label) for i, r in rows.items()} == {
        res["customer_id"]: (res["churn_probability"], res["risk_level"]) for res in results
    }
    for row in rows.values():
        assert (row.route, row.model, row.version, row.request_id) == (
            "/v1/churn/score",
            "clm-churn",
            churn_version,
            request_id,
        )
        assert row.served_at.tzinfo is not None


def test_rows_written_by_the_log_read_back_through_the_orm_exactly_as_served(database_url: str) -> None:
    # The writer hands plain tuples to the driver: ids, times and nulls must come back as the ORM stores them,
    # and a time comparison in SQL must see them (SQLite compares the stored text).
    database = Database(database_url)
    database.upgrade()
    log = PredictionLog(database.engine, capacity=100, batch_size=100, interval=3600)
    log.start()
    before = datetime.now(UTC)
    log.submit(
        "/v1/products/match",
        "clm-products",
        3,
        "req-1",
        [Prediction("a", 0.25, "low"), Prediction(7, 0.5, None, "tv")],
    )
    log.submit("/v1/products/match", "clm-products", 3, "req-2", [Prediction(None, 1.0)])
    log.close(timeout=10)
    after = datetime.now(UTC)
    try:
        with database.session() as session:
            rows = list(
                session.scalars(
                    select(PredictionRow)
                    .where(PredictionRow.served_at >= before, PredictionRow.served_at <= after)
                    .order_by(PredictionRow.id)
                )
            )
    finally:
        database.dispose()
    assert [(r.record_id, r.item, r.score, r.label, r.request_id) for r in rows] == [
        ("a", "", 0.25, "low", "req-1"),
        ("7", "tv", 0.5, None, "req-1"),
        (None, "", 1.0, None, "req-2"),
    ]
    assert all((r.route, r.model, r.version) == ("/v1/products/match", "clm-products", 3) for r in rows)
    assert all(before <= r.served_at <= after and r.served_at.tzinfo is not None for r in rows)
    assert len({r.id for r in rows}) == 3


def test_a_batch_written_again_after_a_lost_commit_answer_is_not_duplicated(database_url: str) -> None:
    # The writer re-sends a batch when it cannot tell whether its commit went through; the rows' ids make the
    # second write a no-op (SQLite: INSERT ... ON CONFLICT; PostgreSQL: COPY to a staging table, then that).
    database = Database(database_url)
    database.upgrade()
    rows = predictions.DriverRows(database.engine.dialect)
    ids = UniqueIds()
    first = rows.build(
        ids, datetime.now(UTC), "/r", "m", 1, "q", [(f"c{i}", "", 0.5, None) for i in range(300)]
    )
    second = rows.build(ids, datetime.now(UTC), "/r", "m", 1, "q", [("d", "", 0.5, None)])
    try:
        for batch in (first, first, first[:10] + second):
            with database.engine.begin() as connection:
                rows.append(connection, batch)
        with database.session() as session:
            assert predictions.count(session, "m") == 301
    finally:
        database.dispose()


def test_the_log_is_written_at_shutdown(
    registry: ModelRegistry, churn_version: int, database_url: str, customers: list[dict[str, Any]]
) -> None:
    # An interval longer than the test: nothing is written until the app shuts down.
    with serving(registry, database_url, prediction_log_interval=3600) as client:
        served = score_batches(client, [customers[i : i + 5] for i in range(0, 30, 5)])
        assert client.app_state["prediction_log"].pending == served
    assert len(logged(database_url)) == served == 30


def test_rows_that_do_not_fit_the_buffer_are_dropped_and_counted_never_silently(
    registry: ModelRegistry, churn_version: int, database_url: str, customers: list[dict[str, Any]]
) -> None:
    dropped_before = metric("clm_prediction_log_dropped_total", reason="overflow")
    with serving(registry, database_url, prediction_log_interval=3600, prediction_log_capacity=10) as client:
        for start in (0, 5, 10):
            response = client.post("/v1/churn/score", json={"customers": customers[start : start + 5]})
            assert response.status_code == 200
        assert "clm_prediction_log_buffered 10.0" in client.get("/metrics").text
    assert metric("clm_prediction_log_dropped_total", reason="overflow") - dropped_before == 5
    assert len(logged(database_url)) == 10


class PostgresOutage:
    """The app reaches PostgreSQL through a proxy; the outage cuts it (connections dropped, new ones refused)."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
        self.app_url = url.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)
        self.proxy_url = self.app_url

    def begin(self) -> None:
        self.proxy.cut()

    def end(self) -> None:
        self.proxy.restore()


class SqliteOutage:
    """Another process-level connection holds SQLite's write lock: every write fails with 'database is locked'."""

    def __init__(self, database_url: str) -> None:
        self.app_url = database_url
        self.path = make_url(database_url).database
        self.holder: sqlite3.Connection | None = None

    def begin(self) -> None:
        self.holder = sqlite3.connect(str(self.path), isolation_level=None)
        self.holder.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        assert self.holder is not None
        self.holder.execute("ROLLBACK")
        self.holder.close()


def test_a_database_outage_under_load_loses_no_log_row_and_fails_no_request(
    registry: ModelRegistry,
    churn_version: int,
    backend: str,
    database_url: str,
    customers: list[dict[str, Any]],
) -> None:
    outage = PostgresOutage(database_url) if backend == "postgresql" else SqliteOutage(database_url)
    batches = [customers[i : i + 4] for i in range(0, len(customers), 4)]  # 100 requests, 400 scores
    failures_before = metric("clm_prediction_log_write_failures_total")
    with serving(registry, outage.app_url, prediction_log_interval=0.05) as client:
        prediction_log = client.app_state["prediction_log"]
        served = score_batches(client, batches[:30])

        outage.begin()
        served += score_batches(client, batches[30:70])
        wait_until(
            lambda: metric("clm_prediction_log_write_failures_total") > failures_before,
            "the writer to meet the outage",
        )
        assert prediction_log.pending > 0  # the rows wait in memory...
        outage.end()

        served += score_batches(client, batches[70:])
        wait_until(
            lambda: prediction_log.pending == 0, "the rows that waited to be written"
        )  # ...and get written

    assert served == 400
    assert len(logged(database_url)) == served


def logged_for(client: TestClient, request_id: str) -> list[tuple[Any, ...]]:
    wait_until(lambda: client.app_state["prediction_log"].pending == 0, "the log to be written")
    with client.app_state["database"].session() as session:
        rows = session.scalars(select(PredictionRow).where(PredictionRow.request_id == request_id))
        return sorted((r.route, r.model, r.record_id, r.score, r.label) for r in rows)


def test_lead_scores_and_rankings_are_logged_with_their_grades(
    leads_client: TestClient, inbound_version: int
) -> None:
    from tests.test_leads_api import LEAD

    leads = [LEAD, {**LEAD, "lead_number": 660738, "total_visits": 0.0}]
    for route, extra in (("/v1/leads/score", {}), ("/v1/leads/rank", {"top_k": 1})):
        request_id = uuid.uuid4().hex
        response = leads_client.post(
            route, json={"line": "inbound", "leads": leads, **extra}, headers={"X-Request-ID": request_id}
        )
        results = response.json()["results"]
        assert logged_for(leads_client, request_id) == sorted(
            (route, "clm-leads-inbound", str(r["lead_number"]), r["conversion_probability"], r["grade"])
            for r in results
        )


def test_diagnoses_are_logged_with_their_effect_probability(diagnosis_client: TestClient) -> None:
    from tests.test_diagnosis_api import LISTING

    request_id = uuid.uuid4().hex
    response = diagnosis_client.post(
        "/v1/diagnosis", json={"listings": [LISTING]}, headers={"X-Request-ID": request_id}
    )
    (result,) = response.json()["results"]
    assert logged_for(diagnosis_client, request_id) == [
        ("/v1/diagnosis", "clm-diagnosis", LISTING["product_id"], result["effect_probability"], None)
    ]


def test_a_row_the_database_refuses_is_counted_and_does_not_hold_up_the_others(
    registry: ModelRegistry, churn_version: int, database_url: str
) -> None:
    refused_before = metric("clm_prediction_log_dropped_total", reason="refused")
    with serving(registry, database_url, prediction_log_interval=0.05) as client:
        prediction_log = client.app_state["prediction_log"]
        good = [Prediction("A", 0.1, "low"), Prediction("B", 0.9, "high")]
        prediction_log.submit("/test", "clm-churn", churn_version, "r1", good)
        prediction_log.submit(
            "/test", "clm-churn", 2**63, "r2", [Prediction("C", 0.5)]
        )  # no integer column holds it
        prediction_log.submit("/test", "clm-churn", churn_version, "r3", [Prediction("D", 0.2, "low")])
        wait_until(lambda: prediction_log.pending == 0, "the log to be written")
    assert sorted(r.record_id for r in logged(database_url)) == ["A", "B", "D"]
    assert metric("clm_prediction_log_dropped_total", reason="refused") - refused_before == 1
