"""The loop end to end: what the service scored and what happened after become the next version's training set.

Ingest the Telco customers, score them all by id through the real app, record their real churn as outcomes for
the customers outside the fixed holdout, retrain from the store: the challenger's ROC AUC on the fixed holdout
is within 0.01 of the champion trained from the file (both with the tests' short fit).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import clm
from app.db import Database
from app.models import ScoredRecord
from model_registry.bundle import GATE_ROWS_FILE
from model_registry.registry import CHALLENGER, ModelRegistry
from tests.conftest import TELCO_FILE, copy_registry, load_demo_customers, small
from tests.test_prediction_log import serving, wait_until
from training import from_store, promotion
from training.data import is_holdout
from training.spec import find_spec


def churned(data_dir: Path) -> dict[str, bool]:
    with (data_dir / TELCO_FILE).open(newline="") as handle:
        return {row["customerID"]: row["Churn"] == "Yes" for row in csv.DictReader(handle)}


def kept(database_url: str) -> int:
    database = Database(database_url)
    try:
        with database.session() as session:
            return session.scalar(select(func.count()).select_from(ScoredRecord)) or 0
    finally:
        database.dispose()


def post_in_batches(client: Any, path: str, field: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 1000):
        response = client.post(path, json={field: items[start : start + 1000]})
        assert response.status_code == 200, response.text


def test_retraining_from_the_store_closes_the_loop(
    registry: ModelRegistry,
    churn_version: int,
    data_dir: Path,
    databases: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the commands make ./var
    own = copy_registry(registry, tmp_path)  # the challenger goes to a registry of the test's own
    url = databases.new("sqlite")
    load_demo_customers(url, data_dir)
    labels = churned(data_dir)
    with serving(own, url, prediction_log_interval=0.05, drift_job=False) as client:
        ids = [{"customer_id": i} for i in labels]
        for start in range(0, len(ids), 1000):
            body = {"customers": ids[start : start + 1000], "explain": False}
            assert client.post("/v1/churn/score", json=body).status_code == 200
        wait_until(lambda: kept(url) == len(ids), "every record scored by id kept in full")
        outcomes = [
            {"event": "customer_churned", "record_id": i, "happened": happened}
            for i, happened in labels.items()
            if not is_holdout(i)
        ]
        post_in_batches(client, "/v1/outcomes", "outcomes", outcomes)

    spec = small(find_spec("churn"))
    ref, figures, source = from_store.retrain_from_store(
        spec, own, url, since=None, min_rows=500, min_positives=50
    )
    assert source["rows"] == len(outcomes)
    assert source["positives"] == sum(o["happened"] for o in outcomes)
    assert source["fixed_holdout_rows_left_out"] == 0  # no outcome recorded for them
    assert CHALLENGER in ref.aliases

    challenger = promotion.holdout_figures(own, spec, data_dir, ref.version)
    champion = promotion.holdout_figures(own, spec, data_dir, churn_version)
    assert abs(challenger["roc_auc"] - champion["roc_auc"]) <= 0.01, (challenger, champion)

    # The gate judges it on the newest outcomes it was not trained on, and says so.
    gate = promotion.evaluate_gate(own, spec, data_dir, ref.version, promotion.GateSettings().margins())
    assert "newest outcomes recorded in the service's store" in gate.rows
    gate_rows = own.load("clm-churn", ref.version).documents[GATE_ROWS_FILE]
    assert len(gate_rows["records"]) == round(len(outcomes) * from_store.GATE_SHARE)
    assert gate.candidate_figures["rows"] == len(gate_rows["records"])
    assert figures["roc_auc"] == pytest.approx(gate.candidate_figures["roc_auc"], abs=1e-9)

    # The same through the commands a user runs: what was found, then the gate's report on those rows.
    environment = {
        "MLFLOW_TRACKING_URI": own.tracking_uri,
        "CLM_ARTIFACT_ROOT": str(own.artifact_root),
        "CLM_DATABASE_URL": url,
        "CLM_DATA_DIR": str(data_dir),
    }
    retrained = CliRunner().invoke(clm, ["retrain", "churn", "--from-store"], env=environment)
    assert retrained.exit_code == 0, retrained.output
    assert f"{len(outcomes):,} records scored by id" in retrained.output
    assert f"{source['positives']:,} positive" in retrained.output
    assert "(challenger): ROC AUC" in retrained.output
    promoted = CliRunner().invoke(clm, ["promote", "churn"], env=environment)
    assert "newest outcomes recorded in the service's store" in promoted.output, promoted.output


def test_a_record_changed_after_its_outcome_trains_as_it_was_scored_before_it(
    registry: ModelRegistry, churn_version: int, data_dir: Path, database_url: str
) -> None:
    load_demo_customers(database_url, data_dir)
    customer = next(i for i in churned(data_dir) if not is_holdout(i))
    score = {"customers": [{"customer_id": customer, "tenure": 7}], "explain": False}
    with serving(registry, database_url, prediction_log_interval=0.05, drift_job=False) as client:
        assert client.post("/v1/churn/score", json=score).status_code == 200
        wait_until(lambda: kept(database_url) == 1, "the first scoring kept")
        outcome = {"event": "customer_churned", "record_id": customer}
        assert client.post("/v1/outcomes", json={"outcomes": [outcome]}).status_code == 200
        later = {"customers": [{"customer_id": customer, "tenure": 70}], "explain": False}
        assert client.post("/v1/churn/score", json=later).status_code == 200
        # Scored only after its outcome: not a prediction of it.
        unjudged = next(i for i in churned(data_dir) if i != customer)
        assert (
            client.post("/v1/outcomes", json={"outcomes": [{**outcome, "record_id": unjudged}]}).status_code
            == 200
        )
        body = {"customers": [{"customer_id": unjudged}], "explain": False}
        assert client.post("/v1/churn/score", json=body).status_code == 200
        wait_until(lambda: kept(database_url) == 3, "every scoring kept")
    rows = from_store.read_store_rows(database_url, find_spec("churn"), None)
    assert rows.record_ids == [customer]
    assert rows.records[0]["tenure"] == 7
    assert rows.targets.tolist() == [1]


def test_too_few_records_are_refused_with_the_counts_and_what_to_do(
    registry: ModelRegistry, churn_version: int, database_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    own = copy_registry(registry, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", own.tracking_uri)
    monkeypatch.setenv("CLM_ARTIFACT_ROOT", str(own.artifact_root))
    monkeypatch.setenv("CLM_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(clm, ["retrain", "churn", "--from-store"])
    assert result.exit_code == 1, result.output
    assert "holds 0 scored records with an outcome recorded after their score" in result.output
    assert "CLM_RETRAIN_MIN_ROWS" in result.output
    assert own.resolve("clm-churn", CHALLENGER) is None
