"""A second churn line from its spec alone: the credit-card churn file served as churn line `card`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from app.main import create_app
from app.schemas.churn import TELCO_EXAMPLE
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_KEY, make_settings
from training.data import load_dataset
from training.spec import find_spec


@pytest.fixture(scope="module")
def two_lines(
    registry: ModelRegistry, churn_version: int, card_trained: tuple[int, float]
) -> Iterator[TestClient]:
    settings = make_settings(registry, ["clm-churn", "clm-churn-card"])
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as client:
        yield client


def test_the_card_line_scores_its_holdout_as_training_measured_it(
    two_lines: TestClient, card_trained: tuple[int, float], data_dir: Path
) -> None:
    version, training_auc = card_trained
    data = load_dataset(find_spec("churn", "card"), data_dir)
    records = data.records(data.holdout)
    ids = data.ids[data.holdout].astype(str).tolist()
    probabilities = []
    for start in range(0, len(records), 1000):
        batch = [
            {**r, "customer_id": i}
            for r, i in zip(records[start : start + 1000], ids[start : start + 1000], strict=True)
        ]
        response = two_lines.post(
            "/v1/churn/score", json={"line": "card", "customers": batch, "explain": False}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"]["name"] == "clm-churn-card"
        assert body["model"]["version"] == version
        probabilities += [r["churn_probability"] for r in body["results"]]
        assert all(r["unknown_fields"] == [] for r in body["results"])  # records carry only the line's fields
    served_auc = roc_auc_score(data.target[data.holdout], np.asarray(probabilities))
    assert served_auc == pytest.approx(training_auc, abs=1e-4)


def test_without_a_line_the_telco_customers_score_as_before(
    two_lines: TestClient, client: TestClient
) -> None:
    with_card = two_lines.post("/v1/churn/score", json={"customers": [TELCO_EXAMPLE]}).json()
    telco_only = client.post("/v1/churn/score", json={"customers": [TELCO_EXAMPLE]}).json()
    assert with_card["model"] == telco_only["model"]
    assert with_card["results"] == telco_only["results"]


def test_each_line_has_its_own_record_schema(two_lines: TestClient) -> None:
    card = two_lines.get("/v1/models/clm-churn-card/schema").json()
    assert "total_trans_ct" in card["properties"]
    assert "tenure" not in card["properties"]
    document = two_lines.get("/openapi.json").json()
    items = document["components"]["schemas"]["ChurnRequest"]["properties"]["customers"]["items"]
    assert items == {
        "anyOf": [
            {"$ref": "#/components/schemas/clm-churn.record"},
            {"$ref": "#/components/schemas/clm-churn-card.record"},
        ]
    }
