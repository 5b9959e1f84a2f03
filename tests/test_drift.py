"""Drift of a served model: sampled records against the reference profile stored with the version at training.

Real churn model (short fit), real Telco customers, the real app and database (SQLite and PostgreSQL). The
shifted population is the Telco customers with tenure under 12 months; the unshifted one a random sample of
all customers of the same size (fixed seed). Every record is sampled (CLM_DRIFT_SAMPLE_RATE 1) so the window
holds all of them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import clm
from app.db import Database
from app.drift import DriftJob
from app.models import ScoredRecord
from app.scoring.runtime.loaded import LoadedModels
from model_registry.drift import REFERENCE_FILE
from model_registry.registry import ModelRegistry
from tests.conftest import load_demo_customers, publish_copy
from tests.test_prediction_log import serving, wait_until
from training.data import load_dataset
from training.spec import find_spec


@pytest.fixture(scope="module")
def telco(data_dir: Path) -> list[dict[str, Any]]:
    """Every Telco customer as an API record (fields only, as a client sends them)."""
    return load_dataset(find_spec("churn"), data_dir).records()


def populations(telco: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shifted = [r for r in telco if r["tenure"] < 12]
    sample = random.Random(17).sample(telco, len(shifted))
    return shifted, sample


def score(client: TestClient, records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), 1000):
        body = {"customers": records[start : start + 1000], "explain": False}
        response = client.post("/v1/churn/score", json=body)
        assert response.status_code == 200, response.text


def kept(database_url: str, **where: Any) -> int:
    database = Database(database_url)
    try:
        with database.session() as session:
            statement = select(func.count()).select_from(ScoredRecord).filter_by(**where)
            return session.scalar(statement) or 0
    finally:
        database.dispose()


def drift(client: TestClient, since: datetime | None = None) -> dict[str, Any]:
    params = {"since": since.isoformat()} if since else {}
    response = client.get("/v1/models/clm-churn/drift", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def every_record(registry: ModelRegistry, churn_version: int, database_url: str) -> Iterator[TestClient]:
    with serving(
        registry, database_url, prediction_log_interval=0.05, drift_sample_rate=1.0, drift_job=False
    ) as client:
        yield client


def test_a_shifted_population_drifts_on_tenure_and_a_random_one_on_no_field(
    every_record: TestClient, database_url: str, telco: list[dict[str, Any]]
) -> None:
    shifted, sample = populations(telco)
    assert len(shifted) > 1500  # enough rows for PSI over 10 bins to be stable

    score(every_record, shifted)
    wait_until(lambda: kept(database_url) == len(shifted), "the shifted records kept")
    figures = drift(every_record)
    by_field = {f["field"]: f for f in figures["fields"]}
    assert figures["records"] == len(shifted)
    assert by_field["tenure"]["psi"] > 0.25
    assert by_field["tenure"]["status"] == "act"
    assert figures["fields"][0]["field"] in ("tenure", "total_charges")  # highest first
    assert figures["share_drifting"] > 0
    # Short-tenure customers churn more: the scores moved too.
    assert figures["score"]["psi"] > 0.1

    since = datetime.now(UTC)
    score(every_record, sample)
    wait_until(lambda: kept(database_url) == 2 * len(shifted), "the sample's records kept")
    figures = drift(every_record, since)
    assert figures["records"] == len(sample)
    worst = max(figures["fields"], key=lambda f: f["psi"])
    assert worst["psi"] < 0.1, worst
    assert figures["share_drifting"] == 0
    assert figures["score"]["psi"] < 0.1
    assert {f["status"] for f in figures["fields"]} == {"stable"}


def test_drift_shows_each_bin_reference_against_current(
    every_record: TestClient, database_url: str, telco: list[dict[str, Any]]
) -> None:
    score(every_record, [{**r, "contract": "Two year"} for r in telco[:200]])
    wait_until(lambda: kept(database_url) == 200, "the records kept")
    contract = next(f for f in drift(every_record)["fields"] if f["field"] == "contract")
    assert contract["kind"] == "categorical"
    assert contract["bins"][-2:] == ["other", "missing"]
    shares = dict(zip(contract["bins"], contract["current"], strict=True))
    assert shares["Two year"] == 1.0
    assert 0.15 < dict(zip(contract["bins"], contract["reference"], strict=True))["Two year"] < 0.35
    assert contract["status"] == "act"


def test_nothing_scored_in_the_window_is_no_data(every_record: TestClient) -> None:
    figures = drift(every_record, datetime(2100, 1, 1, tzinfo=UTC))
    assert figures["records"] == 0
    assert figures["score"]["psi"] is None
    assert {f["status"] for f in figures["fields"]} == {"no data"}


def test_the_default_rate_keeps_about_a_tenth_and_every_stored_customer_scored_by_id(
    registry: ModelRegistry,
    churn_version: int,
    database_url: str,
    data_dir: Path,
    telco: list[dict[str, Any]],
) -> None:
    load_demo_customers(database_url, data_dir)
    with serving(registry, database_url, prediction_log_interval=0.05, drift_job=False) as client:
        score(client, telco[:2000])  # by fields: sampled at 0.1
        ids = [{"customer_id": r["customer_id"]} for r in _ids(data_dir)[:300]]
        score(client, ids)  # stored customers by id: kept in full, sampled or not
        wait_until(lambda: kept(database_url, sampled=False) + kept(database_url) > 300, "records kept")
        wait_until(lambda: kept(database_url, record_id=None) > 0, "sampled records kept")
    by_fields = kept(database_url, record_id=None)
    assert 120 <= by_fields <= 290, by_fields  # binomial(2000, 0.1): 200 +- 6 sigma
    by_id = kept(database_url) - by_fields
    assert by_id == 300
    database = Database(database_url)
    with database.session() as session:
        record = session.scalars(select(ScoredRecord).where(ScoredRecord.record_id == ids[0]["customer_id"]))
        first = record.one()
    database.dispose()
    stored = json.loads(first.record)  # the record as scored, in full
    assert stored["customer_id"] == ids[0]["customer_id"]
    assert {"tenure", "contract", "monthly_charges"} <= stored.keys()


def _ids(data_dir: Path) -> list[dict[str, Any]]:
    dataset = load_dataset(find_spec("churn"), data_dir)
    return [{"customer_id": i} for i in dataset.ids]


def test_the_gauges_come_from_one_job_holding_the_lease(
    registry: ModelRegistry, churn_version: int, database_url: str, telco: list[dict[str, Any]]
) -> None:
    shifted, _ = populations(telco)
    with serving(
        registry,
        database_url,
        prediction_log_interval=0.05,
        drift_sample_rate=1.0,
        drift_interval=0.2,
    ) as client:
        score(client, shifted)
        wait_until(lambda: kept(database_url) == len(shifted), "records kept")

        def tenure_psi() -> float:
            for line in client.get("/metrics").text.splitlines():
                if line.startswith("clm_drift_psi{") and 'field="tenure"' in line and "clm-churn" in line:
                    return float(line.rsplit(" ", 1)[1])
            return 0.0

        wait_until(lambda: tenure_psi() > 0.25, "the drift gauge of tenure")
        text = client.get("/metrics").text
        assert "clm_drift_score_psi{" in text
        assert "clm_drift_fields_drifting_share{" in text
        # Another process on the same database does not compute while the app's job holds the lease.
        other = DriftJob(
            Database(database_url),
            LoadedModels(registry, ["clm-churn"], "champion", threads=1, exact_contributions=True),
            interval=60,
            window=timedelta(hours=1),
            watch=0.1,
            act=0.25,
        )
        assert other.run_once() is False
        assert other.runs == 0


def test_a_version_without_a_reference_profile_says_so(
    registry: ModelRegistry, churn_version: int, database_url: str, tmp_path: Path
) -> None:
    from tests.conftest import copy_registry

    own = copy_registry(registry, tmp_path)
    bundle = own.load("clm-churn", churn_version)
    assert REFERENCE_FILE in bundle.documents
    bundle.documents.clear()
    version = publish_copy(own, bundle)
    own.set_alias("clm-churn", "champion", version)
    with serving(own, database_url, drift_job=False) as client:
        response = client.get("/v1/models/clm-churn/drift")
    assert response.status_code == 404
    assert "no reference profile" in response.json()["error"]["message"]


def test_an_unknown_model_or_a_since_without_a_time_zone_is_refused(every_record: TestClient) -> None:
    assert every_record.get("/v1/models/clm-nothing/drift").status_code == 404
    response = every_record.get("/v1/models/clm-churn/drift", params={"since": "2026-01-01T00:00:00"})
    assert response.status_code == 422
    assert "time zone" in response.text
    response = every_record.get("/v1/models/clm-churn/drift", params={"since": "0001-01-01T00:00:00+01:00"})
    assert response.status_code == 422
    assert "out of range" in response.text


def test_the_drift_report_is_one_html_file_with_a_plot_per_field(
    every_record: TestClient,
    registry: ModelRegistry,
    database_url: str,
    telco: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shifted, _ = populations(telco)
    score(every_record, shifted)
    wait_until(lambda: kept(database_url) == len(shifted), "the shifted records kept")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking_uri)
    monkeypatch.setenv("CLM_ARTIFACT_ROOT", str(registry.artifact_root))
    monkeypatch.setenv("CLM_DATABASE_URL", database_url)
    report = tmp_path / "drift.html"
    result = CliRunner().invoke(clm, ["drift", "report", "clm-churn", "--output", str(report)])
    assert result.exit_code == 0, result.output
    assert "drifting: tenure" in result.output
    page = report.read_text()
    fields = drift(every_record)["fields"]
    # The score's plot, then one per field, each an inline image: the page needs nothing else.
    assert page.count('src="data:image/png;base64,') == len(fields) + 1
    assert "http://" not in page
    assert "https://" not in page
    assert f"{len(shifted):,} sampled records" in page
    assert 'id="tenure"' in page
    assert "tenure: PSI" in page
    assert "(act)" in page

    unknown = CliRunner().invoke(clm, ["drift", "report", "clm-nothing"])
    assert unknown.exit_code == 2
    assert "clm-nothing has no champion version" in unknown.output


def test_the_realised_roc_auc_gauge_is_the_performance_routes_figure(
    registry: ModelRegistry, churn_version: int, database_url: str, data_dir: Path
) -> None:
    dataset = load_dataset(find_spec("churn"), data_dir)
    ids = dataset.ids[dataset.holdout][:400].tolist()
    customers = [
        {**r, "customer_id": i} for r, i in zip(dataset.records(dataset.holdout)[:400], ids, strict=True)
    ]
    churned = dataset.target[dataset.holdout][:400]
    with serving(registry, database_url, prediction_log_interval=0.05, drift_interval=0.2) as client:
        score(client, customers)
        outcomes = [
            {"event": "customer_churned", "record_id": c["customer_id"], "happened": bool(y)}
            for c, y in zip(customers, churned, strict=True)
        ]
        wait_until(lambda: client.app_state["prediction_log"].pending == 0, "the scores to be logged")
        assert client.post("/v1/outcomes", json={"outcomes": outcomes}).status_code == 200
        performance = client.get("/v1/models/clm-churn/performance").json()["versions"]
        (served,) = [v for v in performance if v["version"] == churn_version]

        def gauge(name: str) -> float | None:
            for line in client.get("/metrics").text.splitlines():
                if line.startswith(f"{name}{{") and 'model="clm-churn"' in line:
                    return float(line.rsplit(" ", 1)[1])
            return None

        wait_until(lambda: gauge("clm_judged_records") == served["records"], "the judged-records gauge")
        assert served["records"] == 400
        assert gauge("clm_realised_roc_auc") == pytest.approx(served["roc_auc"], abs=1e-9)
        assert 0.75 < served["roc_auc"] < 0.95
