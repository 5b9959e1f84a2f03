"""The customer store, scoring by id and the profile for a churn line added from its spec (line `card`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from app.cli import clm
from app.main import create_app
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_KEY, make_settings
from training.data import load_dataset
from training.spec import find_spec

CARD_FILE = "credit_card_churn/BankChurners.csv"


def ingest(registry: ModelRegistry, database_url: str, *args: str) -> Result:
    env = {
        "CLM_DATABASE_URL": database_url,
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "CLM_ARTIFACT_ROOT": str(registry.artifact_root),
        "COLUMNS": "200",
    }
    return CliRunner().invoke(clm, ["ingest", "customers", *args], env=env)


@pytest.fixture
def card_client(
    registry: ModelRegistry, card_trained: tuple[int, float], database_url: str, data_dir: Path
) -> Iterator[TestClient]:
    loaded = ingest(registry, database_url, "--line", "card", str(data_dir / CARD_FILE))
    assert loaded.exit_code == 0, loaded.output
    settings = make_settings(registry, ["clm-churn-card"], database_url=database_url)
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as client:
        yield client


def card_record(data_dir: Path, row: int) -> dict[str, Any]:
    data = load_dataset(find_spec("churn", "card"), data_dir)
    return {**data.records()[row], "customer_id": str(data.ids.iloc[row])}


def test_a_lines_customers_load_once_and_a_rerun_changes_nothing(
    registry: ModelRegistry, card_trained: tuple[int, float], database_url: str, data_dir: Path
) -> None:
    first = ingest(registry, database_url, "--line", "card", str(data_dir / CARD_FILE))
    assert first.exit_code == 0, first.output
    assert "10127 rows: 10127 new, 0 updated, 0 unchanged, 0 rejected" in first.output
    again = ingest(registry, database_url, "--line", "card", str(data_dir / CARD_FILE))
    assert "10127 rows: 0 new, 0 updated, 10127 unchanged, 0 rejected" in again.output


def test_a_row_the_lines_model_cannot_read_is_rejected_with_its_reason(
    registry: ModelRegistry,
    card_trained: tuple[int, float],
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    rows = pd.read_csv(data_dir / CARD_FILE, nrows=3)
    rows = rows.astype({"Customer_Age": object})
    rows.loc[1, "Customer_Age"] = "old"
    bad_file = tmp_path / "card.csv"
    rows.to_csv(bad_file, index=False)
    result = ingest(registry, database_url, "--line", "card", str(bad_file))
    assert result.exit_code == 1
    assert "customer_age='old'" in result.output
    assert "2 new" in result.output


def test_a_stored_customer_of_the_line_scores_by_id_as_its_whole_record(
    card_client: TestClient, data_dir: Path
) -> None:
    record = card_record(data_dir, 7)

    def score(customer: dict[str, Any]) -> dict[str, Any]:
        response = card_client.post("/v1/churn/score", json={"line": "card", "customers": [customer]})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["results"][0]
        return result

    assert score({"customer_id": record["customer_id"]}) == score(record)
    unknown = card_client.post(
        "/v1/churn/score", json={"line": "card", "customers": [{"customer_id": "nobody"}]}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["details"][0]["path"] == "customers[0].customer_id"


def test_the_profile_of_a_lines_customer_reads_the_lines_fields(
    card_client: TestClient, data_dir: Path
) -> None:
    record = card_record(data_dir, 7)
    response = card_client.get(f"/v1/customers/{record['customer_id']}/profile", params={"line": "card"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["line"] == "card"
    assert body["churn"]["models"][0]["name"] == "clm-churn-card"
    scored = card_client.post("/v1/churn/score", json={"line": "card", "customers": [record]}).json()
    assert body["churn"]["churn_probability"] == scored["results"][0]["churn_probability"]
    assert body["offers"]["available"] is False
    assert body["offers"]["message"].startswith("products line 'card' is not served")
    spend = record["total_trans_amt"]
    assert f"12-month card spend {spend:.2f}" in body["value"]["reason"]
    # The stage reads the line's tenure field (months_on_book); a card has no contract: a 12-month first term.
    if body["churn"]["risk_level"] == "high":
        assert body["lifecycle"]["stage"] == "D"
    else:
        assert body["lifecycle"]["stage"] == "C"
        assert body["lifecycle"]["reason"].startswith(
            f"{record['months_on_book']} months in, past the first 12"
        )


def test_the_profile_of_an_unknown_line_is_a_404_naming_the_lines(card_client: TestClient) -> None:
    response = card_client.get("/v1/customers/768805383/profile", params={"line": "bank"})
    assert response.status_code == 404
    assert "lines served: card" in response.json()["error"]["message"]
