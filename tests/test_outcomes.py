"""POST /v1/outcomes and GET /v1/models/{name}/performance on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score
from sqlalchemy import select

from app.db import Database
from app.models import Outcome, PredictionRow
from model_registry.registry import ModelRegistry
from tests.test_prediction_log import serving, wait_until
from training.data import load_dataset
from training.spec import find_spec

SERVED = ("clm-churn", "clm-products", "clm-leads-inbound", "clm-leads-outbound")


@pytest.fixture
def client(
    registry: ModelRegistry,
    churn_version: int,
    products_version: int,
    inbound_version: int,
    outbound_version: int,
    database_url: str,
) -> Iterator[TestClient]:
    with serving(registry, database_url, prediction_log_interval=0.05, models=SERVED) as test_client:
        yield test_client


def post(client: TestClient, *outcomes: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/outcomes", json={"outcomes": list(outcomes)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def stored(client: TestClient) -> list[Outcome]:
    with client.app_state["database"].session() as session:
        return list(session.scalars(select(Outcome)))


def test_the_same_outcome_twice_is_one_row(client: TestClient) -> None:
    churned = {"event": "customer_churned", "record_id": "7590-VHVEG", "observed_at": "2026-03-01T10:00:00Z"}
    first = post(client, churned)
    assert (first["recorded"], first["unchanged"], first["corrected"]) == (1, 0, 0)
    assert post(client, churned)["unchanged"] == 1
    assert post(client, {"event": "customer_churned", "record_id": "7590-VHVEG"})["unchanged"] == 1
    (row,) = stored(client)
    assert (row.event, row.record_id, row.item, row.happened) == ("customer_churned", "7590-VHVEG", "", True)
    assert row.observed_at == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_a_different_value_for_the_same_fact_corrects_it(client: TestClient) -> None:
    offer = {"event": "offer_accepted", "record_id": "7590-VHVEG", "product": "tech_support"}
    post(client, offer)
    assert post(client, {**offer, "happened": False})["corrected"] == 1
    (row,) = stored(client)
    assert row.happened is False
    assert row.item == "tech_support"


def test_outcomes_about_different_products_or_lines_are_different_facts(client: TestClient) -> None:
    counts = post(
        client,
        {"event": "offer_accepted", "record_id": "A", "product": "tech_support"},
        {"event": "offer_accepted", "record_id": "A", "product": "streaming_tv"},
        {"event": "lead_converted", "record_id": 660737, "line": "inbound"},
        {"event": "lead_converted", "record_id": 660737, "line": "outbound"},
    )
    assert counts["recorded"] == 4
    assert len(stored(client)) == 4


def test_an_outcome_missing_its_product_or_line_is_a_422_naming_the_field(client: TestClient) -> None:
    response = client.post(
        "/v1/outcomes",
        json={
            "outcomes": [
                {"event": "offer_accepted", "record_id": "A"},
                {"event": "customer_churned", "record_id": "A", "line": "inbound"},
                {
                    "event": "lead_converted",
                    "record_id": 1,
                    "line": "inbound",
                    "observed_at": "2026-03-01T10:00:00",
                },
                {"event": "renewed", "record_id": "A"},
            ]
        },
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    paths = {d["path"] for d in response.json()["error"]["details"]}
    assert paths == {
        "outcomes[0].product",
        "outcomes[1].line",
        "outcomes[2].observed_at",
        "outcomes[3].event",
    }


def test_performance_of_an_unjudged_model_is_a_404(client: TestClient) -> None:
    response = client.get("/v1/models/clm-diagnosis/performance")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_performance_reports_realised_auc_conversion_by_risk_level_and_lift_of_the_served_version(
    client: TestClient, churn_version: int, data_dir: Path
) -> None:
    dataset = load_dataset(find_spec("churn"), data_dir)
    holdout = dataset.holdout.nonzero()[0][:300]
    records = dataset.records(dataset.holdout)[:300]
    customers = [{"customer_id": str(dataset.ids[i]), **r} for i, r in zip(holdout, records, strict=True)]
    churned = {str(dataset.ids[i]): bool(dataset.target[i]) for i in holdout}

    response = client.post("/v1/churn/score", json={"customers": customers, "explain": False})
    results = response.json()["results"]
    wait_until(lambda: client.app_state["prediction_log"].pending == 0, "the scores to be logged")
    # One outcome observed before the score was served: that score did not predict it and is left out.
    early = results[0]["customer_id"]
    post(
        client,
        *[
            {
                "event": "customer_churned",
                "record_id": cid,
                "happened": happened,
                "observed_at": (datetime.now(UTC) - timedelta(days=1)).isoformat() if cid == early else None,
            }
            for cid, happened in churned.items()
        ],
    )

    body = client.get("/v1/models/clm-churn/performance").json()
    assert body["event"] == "customer_churned"
    (version,) = body["versions"]
    counted = [r for r in results if r["customer_id"] != early]
    truth = [churned[r["customer_id"]] for r in counted]
    assert version["version"] == churn_version
    assert version["records"] == len(counted) == 299
    assert version["positives"] == sum(truth)
    assert version["roc_auc"] == pytest.approx(
        roc_auc_score(truth, [r["churn_probability"] for r in counted])
    )
    by_level = {g["group"]: g for g in version["by_label"]}
    assert [g["group"] for g in version["by_label"]] == [
        lvl for lvl in ("high", "medium", "low") if lvl in by_level
    ]
    assert by_level["high"]["positive_rate"] > by_level["low"]["positive_rate"]
    assert by_level["high"]["lift"] > 1 > by_level["low"]["lift"]
    assert version["top_decile_lift"] > 1
    assert version["by_item"] == []


def test_offer_outcomes_judge_the_product_score_they_answer(
    registry: ModelRegistry, churn_version: int, products_version: int, database_url: str, data_dir: Path
) -> None:
    dataset = load_dataset(find_spec("churn"), data_dir)
    customers = [
        {"customer_id": str(i), **r} for i, r in zip(dataset.ids[:60], dataset.records()[:60], strict=True)
    ]
    with serving(registry, database_url, prediction_log_interval=0.05, models=("clm-products",)) as client:
        response = client.post("/v1/products/match", json={"customers": customers, "explain": False})
        offers = [
            (r["customer_id"], o["product"]) for r in response.json()["results"] for o in r["recommendations"]
        ]
        wait_until(lambda: client.app_state["prediction_log"].pending == 0, "the offers to be logged")
        # Every offer made gets an answer: taken for tech support, declined otherwise; and one answer about a
        # product never offered, which no logged score predicted.
        answers = [
            {
                "event": "offer_accepted",
                "record_id": cid,
                "product": product,
                "happened": product == "tech_support",
            }
            for cid, product in offers
        ]
        never_offered = next(
            p
            for p in ("multiple_lines", "online_backup", "streaming_tv")
            if (customers[0]["customer_id"], p) not in offers
        )
        answers.append(
            {"event": "offer_accepted", "record_id": customers[0]["customer_id"], "product": never_offered}
        )
        post(client, *answers)
        body = client.get("/v1/models/clm-products/performance").json()

    (version,) = body["versions"]
    assert body["event"] == "offer_accepted"
    assert version["records"] == len(offers)
    by_item = {g["group"]: g for g in version["by_item"]}
    assert sum(g["records"] for g in by_item.values()) == len(offers)
    assert by_item["tech_support"]["positive_rate"] == 1.0
    assert all(g["positive_rate"] == 0.0 for name, g in by_item.items() if name != "tech_support")
    assert version["by_label"] == []


def test_an_outcome_naming_a_product_or_line_not_served_is_a_422_listing_the_served_ones(
    client: TestClient,
) -> None:
    response = client.post(
        "/v1/outcomes",
        json={
            "outcomes": [
                {"event": "offer_accepted", "record_id": "A", "product": "tech_support"},
                {"event": "offer_accepted", "record_id": "A", "product": "Tech Support"},
                {"event": "lead_converted", "record_id": 1, "line": "walk-in"},
            ]
        },
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    details = {d["path"]: d["message"] for d in error["details"]}
    assert set(details) == {"outcomes[1].product", "outcomes[2].line"}
    assert "tech_support" in details["outcomes[1].product"]
    assert "streaming_tv" in details["outcomes[1].product"]
    assert "inbound, outbound" in details["outcomes[2].line"]
    assert stored(client) == []  # nothing of a refused call is stored


def test_product_outcomes_without_a_product_model_served_are_a_422(
    registry: ModelRegistry, churn_version: int, database_url: str
) -> None:
    with serving(registry, database_url) as client:  # clm-churn only
        response = client.post(
            "/v1/outcomes", json={"outcomes": [{"event": "offer_accepted", "record_id": "A", "product": "x"}]}
        )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["message"] == "no products model is served"


def test_performance_figures_counted_in_sql_equal_those_computed_record_by_record(
    registry: ModelRegistry, churn_version: int, database_url: str
) -> None:
    """Two versions, tied scores, repeated scores of one record, outcomes before a score: the database's
    counts give the figures a record-by-record computation gives (sklearn's AUC, ties counting one half)."""
    rng = np.random.default_rng(14)
    now = datetime.now(UTC)
    propensity = rng.random(400)
    converted = rng.random(400) < propensity * 0.8
    outcomes = [outcome(f"lead-{i}", bool(h), now - timedelta(hours=1)) for i, h in enumerate(converted)]
    rows, expected = [], {}
    for version, size in ((1, 400), (2, 250)):  # version 2 scored only the first 250 leads
        uniform = np.clip(propensity[:size] + rng.normal(0, 0.2 * version, size), 0, 1)
        # Ties below 0.8 (two decimals); distinct above, so the top tenth is one set of records.
        scores = np.where(uniform < 0.8, np.round(uniform, 2), uniform + np.arange(size) * 1e-9)
        happened = converted[:size]
        labels = np.where(scores > 0.5, "A", "B")
        for i, (score, label) in enumerate(zip(scores, labels, strict=True)):
            record = f"lead-{i}"
            rows.append(prediction(version, record, float(score), str(label), now - timedelta(hours=2)))
            # An older score of the same record: the last one before the outcome counts.
            rows.append(prediction(version, record, 0.5, "B", now - timedelta(hours=3)))
        top = np.argsort(-scores)[: -(-size // 10)]
        expected[version] = {
            "records": size,
            "positives": int(happened.sum()),
            "roc_auc": roc_auc_score(happened, scores),
            "top_decile_lift": happened[top].mean() / happened.mean(),
            "by_label": {g: (int((labels == g).sum()), int(happened[labels == g].sum())) for g in ("A", "B")},
        }
    # A score served after its outcome was observed predicted nothing: left out.
    rows.append(prediction(2, "lead-0", 0.99, "A", now))
    database = Database(database_url)
    try:
        with database.session() as session:
            session.add_all(rows + outcomes)
    finally:
        database.dispose()

    with serving(registry, database_url) as client:
        body = client.get("/v1/models/clm-leads-inbound/performance").json()
    assert [v["version"] for v in body["versions"]] == [1, 2]
    for figures in body["versions"]:
        want = expected[figures["version"]]
        assert figures["records"] == want["records"]
        assert figures["positives"] == want["positives"]
        assert figures["roc_auc"] == pytest.approx(want["roc_auc"], abs=1e-12)
        assert figures["top_decile_lift"] == pytest.approx(want["top_decile_lift"], abs=1e-12)
        assert [g["group"] for g in figures["by_label"]] == ["A", "B"]
        for group in figures["by_label"]:
            assert (group["records"], group["positives"]) == want["by_label"][group["group"]]
            assert group["lift"] == pytest.approx(
                group["positive_rate"] / (want["positives"] / want["records"]), abs=1e-12
            )
        assert figures["by_item"] == []


def prediction(version: int, record_id: str, score: float, label: str, served_at: datetime) -> PredictionRow:
    return PredictionRow(
        id=uuid.uuid4(),
        served_at=served_at,
        route="/v1/leads/score",
        model="clm-leads-inbound",
        version=version,
        record_id=record_id,
        item="",
        score=score,
        label=label,
        request_id="test",
    )


def outcome(record_id: str, happened: bool, observed_at: datetime) -> Outcome:
    return Outcome(
        event="lead_converted",
        record_id=record_id,
        item="inbound",
        happened=happened,
        observed_at=observed_at,
        recorded_at=observed_at,
        updated_at=observed_at,
    )
