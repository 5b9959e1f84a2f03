"""A customer's churn score over time, from the prediction log, and its trend in the profile."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.concurrency import read_database
from app.db import Database
from app.ids import UniqueIds
from app.repositories import customers as customer_repo
from app.repositories import line_customers as line_customer_repo
from app.repositories import predictions
from app.repositories.customers import StoredCustomer
from app.request_reads import Read
from app.scoring.customers.trend import trend_of
from model_registry.registry import ModelRegistry
from tests.conftest import load_demo_customers
from tests.test_prediction_log import logged, serving, wait_until

CUSTOMER, OTHER = "7590-VHVEG", "5575-GNVDE"
# The same customer, from a loyal two-year customer to a new month-to-month one: its churn risk rises.
SCORINGS = (
    {"tenure": 60, "contract": "Two year", "monthly_charges": 30.0},
    {"tenure": 24, "contract": "One year", "monthly_charges": 70.0},
    {"tenure": 1, "contract": "Month-to-month", "monthly_charges": 95.0},
)


def test_a_churn_probability_rising_over_three_scorings_shows_rising_in_the_profile(
    registry: ModelRegistry, churn_version: int, database_url: str, data_dir: Path
) -> None:
    load_demo_customers(database_url, data_dir)
    with serving(registry, database_url, prediction_log_interval=0.05, drift_job=False) as client:
        served = []
        for fields in SCORINGS:
            body = {"customers": [{"customer_id": CUSTOMER, **fields}], "explain": False}
            served.append(client.post("/v1/churn/score", json=body).json()["results"][0]["churn_probability"])
        assert served == sorted(served)
        wait_until(lambda: len(logged(database_url)) == 3, "the three scorings logged")
        trend = client.get(f"/v1/customers/{CUSTOMER}/profile").json()["churn"]["trend"]
        # A customer scored once (this view's score is logged after the history is read) has no trend yet.
        other = client.get(f"/v1/customers/{OTHER}/profile").json()["churn"]["trend"]
    assert [h["score"] for h in trend["history"]] == served
    assert trend["trend"] == "rising"
    assert trend["slope"] > 0.01
    assert "least-squares slope" in trend["rule"]
    assert other["trend"] == "not enough history"
    assert other["history"] == []


def at(minutes: int) -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)


def newest_first(*scores: float, version: int = 1) -> list[tuple[datetime, int, float]]:
    return [(at(i), version, s) for i, s in enumerate(scores)][::-1]


def test_the_trend_rule() -> None:
    rule = {"scorings": 5, "min_slope": 0.01}
    assert trend_of(newest_first(0.2, 0.3), **rule)["trend"] == "not enough history"
    assert trend_of(newest_first(0.2, 0.3, 0.4), **rule)["trend"] == "rising"
    assert trend_of(newest_first(0.6, 0.4, 0.3), **rule)["trend"] == "falling"
    assert trend_of(newest_first(0.30, 0.305, 0.30, 0.302), **rule)["trend"] == "steady"
    # Views of an unchanged record repeat the same score: one scoring, not several.
    repeated = trend_of(newest_first(0.2, 0.2, 0.2, 0.3, 0.3), **rule)
    assert repeated["trend"] == "not enough history"
    assert [h["score"] for h in repeated["history"]] == [0.2, 0.3]
    # Only the last `scorings` count: an old fall does not hide a recent rise.
    recent = trend_of(newest_first(0.9, 0.1, 0.2, 0.3, 0.4, 0.5), scorings=3, min_slope=0.01)
    assert [h["score"] for h in recent["history"]] == [0.3, 0.4, 0.5]
    assert recent["trend"] == "rising"


def test_the_profile_reads_a_customers_newest_scores_exactly_with_the_customer(database_url: str) -> None:
    # One read gives the customer and its score history (app/repositories/json_rows.py): as the route reads it
    # (PostgreSQL: psycopg on the event loop; SQLite: the engine), scores to the last bit, times in UTC.
    database = Database(database_url)
    database.upgrade()
    rows = predictions.DriverRows(database.engine.dialect)
    ids = UniqueIds()
    scores = [1 / 3, 0.1 + 0.2, 2 / 3, 0.123456789012345678]
    written = [
        *(
            rows.build(ids, at(i), "/r", "clm-churn", 1 + i // 2, "q", [("c1", "", s, None)])[0]
            for i, s in enumerate(scores)
        ),
        # Not c1's churn scores: another model, another item, another customer.
        *rows.build(
            ids, at(9), "/r", "clm-products", 1, "q", [("c1", "", 0.9, None), ("c1", "tv", 0.9, None)]
        ),
        *rows.build(ids, at(9), "/r", "clm-churn", 1, "q", [("c2", "", 0.9, None)]),
    ]
    try:
        with database.session() as session:
            customer_repo.upsert_many(session, [{"customer_id": "c1"}, {"customer_id": "c3"}])
            line_customer_repo.upsert_many(session, "card", [{"customer_id": "c1"}])
            rows.append(session.connection(), written)

        def read(read: Read[StoredCustomer | None]) -> list[tuple[datetime, int, float]]:
            stored = asyncio.run(read_database(database, 1, read))
            assert stored is not None
            return stored.score_history

        newest_three = [(at(3), 2, scores[3]), (at(2), 2, scores[2]), (at(1), 1, scores[1])]
        assert read(customer_repo.profile_read("c1", "churned", "clm-churn", 3)) == newest_three
        assert read(line_customer_repo.profile_read("card", "c1", "churned", "clm-churn", 3)) == newest_three
        assert read(customer_repo.profile_read("c3", "churned", "clm-churn", 3)) == []
    finally:
        asyncio.run(database.aclose())
