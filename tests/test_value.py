"""Customer value: BG/NBD and Gamma-Gamma against their published CDNOW fit, the retail version's holdout
figures in MLflow, POST /v1/value/score by id, summary and transactions, its errors, and the lifecycle commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from app.cli import clm
from app.main import create_app
from app.schemas.value import ValueResponse
from model_registry.registry import CHAMPION, ModelRegistry
from model_registry.value import BgNbd, GammaGamma
from tests.conftest import BACKENDS, SCORE_KEY, Databases, make_settings
from tests.test_response_contract import holds_to

VALUE = "clm-value-retail"
CDNOW = "cdnow/cdnow_customers_summary_with_transactions.csv"


def within_one_percent(got: float, published: float) -> bool:
    return abs(got - published) <= 0.01 * published


def test_cdnow_summaries_give_the_published_bg_nbd_and_gamma_gamma_parameters(data_dir: Path) -> None:
    cdnow = pd.read_csv(data_dir / CDNOW)
    x, t_x, big_t = (cdnow[c].to_numpy(np.float64) for c in ("x", "t_x", "T"))
    purchases = BgNbd.fit(x, t_x, big_t)
    spend = GammaGamma.fit(x, cdnow["zbar"].to_numpy(np.float64))

    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44}
    got = {**vars(purchases), **vars(spend)}
    assert {k: within_one_percent(got[k], v) for k, v in published.items()} == dict.fromkeys(
        published, True
    ), got
    # Customer 1 of the paper's data (x=2, t_x=30.43, T=38.86): its expected purchases in the next 39 weeks.
    one = [np.array([v]) for v in (2.0, 30.43, 38.86)]
    assert purchases.expected_purchases(39, *one)[0] == pytest.approx(1.226, abs=0.002)
    # A customer who never repeated cannot have dropped out; one long silent after many purchases likely has.
    alive = purchases.p_alive(np.array([0.0, 10.0]), np.array([0.0, 5.0]), np.array([38.86, 38.86]))
    assert alive[0] == 1.0
    assert alive[1] < 0.05


def test_the_retail_version_carries_its_holdout_figures_table_and_plot(
    registry: ModelRegistry, value_trained: tuple[int, dict[str, float]]
) -> None:
    version, figures = value_trained
    ref = registry.get_version(VALUE, version)
    metrics = registry.run_metrics(ref)
    for figure in (
        "purchases_mae",
        "purchases_correlation",
        "top_decile_capture",
        "top_decile_capture_past_spend",
    ):
        assert metrics[f"holdout.{figure}"] == pytest.approx(figures[figure])
    assert 0 < figures["purchases_mae"] < 2
    assert figures["purchases_correlation"] > 0.5
    assert 0.3 < figures["top_decile_capture_past_spend"] < 0.8
    artifacts = {
        a.path for folder in ("tables", "plots") for a in registry.client.list_artifacts(ref.run_id, folder)
    }
    assert "tables/holdout_purchases_by_calibration_repeats.csv" in artifacts
    assert "plots/purchases_actual_vs_predicted.png" in artifacts
    # The tiers are on lifetime value only where it ranked the holdout better than past spend did.
    tiers = registry.load(VALUE, version).metadata["tiers"]
    gain = figures["top_decile_capture"] - figures["top_decile_capture_past_spend"]
    assert tiers["basis"] == ("lifetime_value" if gain >= 0.005 else "past_spend")


def clm_run(registry: ModelRegistry, data_dir: Path, *args: str, database_url: str | None = None) -> Result:
    env = {
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "CLM_ARTIFACT_ROOT": str(registry.artifact_root),
        "CLM_DATA_DIR": str(data_dir),
        "COLUMNS": "200",
    }
    if database_url is not None:
        env["CLM_DATABASE_URL"] = database_url
    return CliRunner().invoke(clm, list(args), env=env)


@pytest.fixture(scope="module", params=BACKENDS)
def value_client(
    request: pytest.FixtureRequest,
    databases: Databases,
    registry: ModelRegistry,
    value_trained: tuple[int, dict[str, float]],
    data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """The retail value model served on each backend, with its customers' summaries as of the data's last day in
    the store (shared by the module's tests: they read, never write)."""
    database_url = databases.new(str(request.param))
    summaries = tmp_path_factory.mktemp("value") / "retail.csv"
    written = clm_run(registry, data_dir, "value", "summaries", str(summaries), "--as-of", "2011-12-09")
    assert written.exit_code == 0, written.output
    loaded = clm_run(
        registry,
        data_dir,
        "ingest",
        "customers",
        "--line",
        "retail",
        str(summaries),
        database_url=database_url,
    )
    assert loaded.exit_code == 0, loaded.output
    settings = make_settings(registry, [VALUE], database_url=database_url)
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as client:
        yield client


def score(client: TestClient, *customers: dict[str, Any]) -> Any:
    return client.post("/v1/value/score", json={"customers": list(customers)})


SUMMARY = {
    "frequency": 6,
    "recency": 40,
    "t": 50,
    "monetary_value": 300.0,
    "current_value": 500.0,
    "past_spend": 2500.0,
}


def test_by_id_the_stored_summary_scores_as_if_it_were_sent(value_client: TestClient, tmp_path: Path) -> None:
    by_id = score(value_client, {"customer_id": "12347"})
    (result,) = holds_to(ValueResponse, by_id)["results"]
    sent = score(value_client, {"customer_id": "12347", **result["summary"]}).json()["results"][0]
    assert sent == result
    assert by_id.json()["model"]["name"] == VALUE
    assert result["value_tier"] in ("high", "mid", "low")
    assert result["lifetime_value"] > 0
    missing = score(value_client, {"customer_id": "no-such-customer"})
    assert missing.status_code == 404
    assert missing.json()["error"]["details"][0]["path"] == "customers[0].customer_id"


def test_a_summary_gives_purchases_alive_spend_lifetime_value_and_tier(value_client: TestClient) -> None:
    low = {**SUMMARY, "frequency": 1, "recency": 2, "monetary_value": 20.0, "past_spend": 40.0}
    response = score(value_client, {"customer_id": "a", **SUMMARY}, {"customer_id": "b", **low})
    big, small = holds_to(ValueResponse, response)["results"]
    assert big["expected_purchases"] > small["expected_purchases"] > 0
    assert big["lifetime_value"] > small["lifetime_value"] > 0
    assert 0 <= small["probability_alive"] <= 1
    assert big["horizon_months"] == 12
    assert big["current_value"] == 500.0
    assert (big["value_tier"], small["value_tier"]) == ("high", "low")
    assert big["tier_reason"].startswith(big["tier_basis"].replace("_", " "))


def test_transactions_score_as_their_summary(value_client: TestClient) -> None:
    transactions = [
        {"date": "2011-01-03", "amount": 100.0},
        {"date": "2011-01-04", "amount": 50.0},  # the same week: one purchase
        {"date": "2011-03-01", "amount": 200.0},
        {"date": "2011-03-05", "amount": -20.0, "is_return": True},
        {"date": "2011-06-01", "amount": 200.0},
    ]
    response = score(value_client, {"customer_id": "t", "as_of": "2011-12-09", "transactions": transactions})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    # 2 repeat weeks, the last 21 weeks after the first; 48 weeks to the cut-off; 20 of 550 returned.
    assert result["summary"] == {
        "frequency": 2,
        "recency": 21.0,
        "t": 48.0,
        "monetary_value": pytest.approx(200 * (1 - 20 / 550)),
        "current_value": 0.0,
        "past_spend": 530.0,
    }
    again = score(value_client, {"customer_id": "t", **result["summary"]}).json()["results"][0]
    assert again["lifetime_value"] == result["lifetime_value"]


@pytest.mark.parametrize(
    ("customer", "path", "words"),
    [
        (
            {"transactions": [{"date": "2011-01-03", "amount": -5.0}]},
            "customers[0].transactions[0].amount",
            "not a return",
        ),
        (
            {
                "as_of": "2011-02-01",
                "transactions": [
                    {"date": "2011-01-03", "amount": 5.0},
                    {"date": "2011-03-01", "amount": 5.0},
                ],
            },
            "customers[0].transactions[1].date",
            "after the cut-off",
        ),
        (
            {"as_of": "2010-12-01", "transactions": [{"date": "2011-01-03", "amount": 5.0}]},
            "customers[0].as_of",
            "before the first purchase",
        ),
        (
            {"as_of": "2999-01-01", "transactions": [{"date": "2011-01-03", "amount": 5.0}]},
            "customers[0].as_of",
            "future",
        ),
        ({**SUMMARY, "recency": 60}, "customers[0].recency", "after t"),
        ({"frequency": 2, "recency": 3}, "customers[0].t", "needed"),
        (
            {**SUMMARY, "transactions": [{"date": "2011-01-03", "amount": 5.0}]},
            "customers[0].transactions",
            "not both",
        ),
        ({**SUMMARY, "monetary_value": -1}, "customers[0].monetary_value", "greater than or equal"),
    ],
)
def test_bad_input_is_a_422_naming_the_path(
    value_client: TestClient, customer: dict[str, Any], path: str, words: str
) -> None:
    response = score(value_client, {"customer_id": "x", **customer})
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert any(d["path"] == path and words in d["message"] for d in details), details


def test_the_value_version_is_promoted_and_rolled_back_like_the_others(
    tmp_path: Path, data_dir: Path
) -> None:
    registry = ModelRegistry(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"))
    first = clm_run(registry, data_dir, "train", "value")
    assert first.exit_code == 0, first.output
    assert "version 1 (champion): holdout purchases MAE" in first.output
    assert clm_run(registry, data_dir, "retrain", "value").exit_code == 0
    promoted = clm_run(registry, data_dir, "promote", "value")
    assert promoted.exit_code == 0, promoted.output
    assert "purchases_mae" in promoted.output
    assert "top_decile_capture" in promoted.output
    assert registry.resolve(VALUE, CHAMPION).version == 2  # type: ignore[union-attr]
    rolled = clm_run(registry, data_dir, "rollback", "value")
    assert rolled.exit_code == 0, rolled.output
    assert registry.resolve(VALUE, CHAMPION).version == 1  # type: ignore[union-attr]
