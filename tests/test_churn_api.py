"""POST /v1/churn/score through the real app, with a real model trained on the real data and registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from app.main import create_app
from app.schemas.churn import TELCO_EXAMPLE as CUSTOMER
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_ONLY_KEY, make_settings
from training.data import load_dataset
from training.spec import find_spec


def score(client: TestClient, customers: list[dict[str, object]], **extra: object) -> dict:
    response = client.post("/v1/churn/score", json={"customers": customers, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_customer_gets_a_probability_risk_level_and_reasons(client: TestClient, churn_version: int) -> None:
    response = client.post("/v1/churn/score", json={"customers": [CUSTOMER]})
    body = response.json()
    assert body["model"] == {"name": "clm-churn", "version": churn_version, "alias": "champion"}
    assert body["request_id"] == response.headers["x-request-id"]
    (result,) = body["results"]
    assert result["customer_id"] == "7590-VHVEG"
    assert 0 < result["churn_probability"] < 1
    assert result["risk_level"] in {"high", "medium", "low"}
    factors = result["top_factors"]
    assert 1 <= len(factors) <= 5
    impacts = [abs(f["impact"]) for f in factors]
    assert impacts == sorted(impacts, reverse=True)
    for factor in factors:
        assert factor["value"] == CUSTOMER[factor["feature"]]


def test_every_request_gets_its_own_request_id_when_the_caller_sends_none(client: TestClient) -> None:
    ids = [
        client.post("/v1/churn/score", json={"customers": [CUSTOMER]}).headers["x-request-id"]
        for _ in range(3)
    ]
    assert len(set(ids)) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_results_come_in_request_order_and_echo_ids(client: TestClient) -> None:
    customers = [{**CUSTOMER, "customer_id": f"c{i}", "tenure": i} for i in range(0, 70, 7)]
    results = score(client, customers)["results"]
    assert [r["customer_id"] for r in results] == [c["customer_id"] for c in customers]


def test_risk_levels_follow_the_thresholds_stored_with_the_version(client: TestClient) -> None:
    served = next(m for m in client.get("/v1/models").json()["models"] if m["name"] == "clm-churn")
    assert served["settings"]["risk_levels"] == {"high": 0.5, "medium": 0.25}  # as documented in the README
    customers = [
        {**CUSTOMER, "tenure": t, "contract": c, "internet_service": i}
        for t in (1, 12, 40, 70)
        for c in ("Month-to-month", "Two year")
        for i in ("Fiber optic", "No")
    ]
    results = score(client, customers)["results"]
    for result in results:
        p = result["churn_probability"]
        assert result["risk_level"] == ("high" if p >= 0.5 else "medium" if p >= 0.25 else "low")
    assert {r["risk_level"] for r in results} == {"high", "medium", "low"}


def test_explain_false_skips_the_reasons_but_not_the_score(client: TestClient) -> None:
    with_reasons = score(client, [CUSTOMER])["results"][0]
    without = score(client, [CUSTOMER], explain=False)["results"][0]
    assert without["top_factors"] is None
    assert without["churn_probability"] == with_reasons["churn_probability"]


def test_an_unknown_category_scores_as_missing(client: TestClient) -> None:
    unseen = score(client, [{**CUSTOMER, "payment_method": "Bitcoin"}])["results"][0]
    absent = score(client, [{k: v for k, v in CUSTOMER.items() if k != "payment_method"}])["results"][0]
    assert unseen["churn_probability"] == absent["churn_probability"]


def test_a_record_with_no_fields_at_all_still_scores(client: TestClient) -> None:
    # A record with only an id is scored from the customer store instead (tests/test_scoring_by_id.py).
    (result,) = score(client, [{}])["results"]
    assert result["customer_id"] is None
    assert 0 < result["churn_probability"] < 1


def test_bad_input_is_a_422_naming_each_bad_field(client: TestClient) -> None:
    customers = [
        CUSTOMER,
        {**CUSTOMER, "tenure": "twelve"},
        {**CUSTOMER, "contract": 1.5, "customer_id": [1]},
    ]
    response = client.post("/v1/churn/score", json={"customers": customers})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {d["path"] for d in error["details"]} == {
        "customers[1].tenure",
        "customers[2].contract",
        "customers[2].customer_id",
    }


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "customers"),
        ({"customers": []}, "customers"),
        ({"customers": [1]}, "customers[0]"),
        ({"customers": [CUSTOMER], "explain": "maybe"}, "explain"),
    ],
)
def test_a_malformed_body_is_a_422_with_the_path(client: TestClient, body: dict, path: str) -> None:
    response = client.post("/v1/churn/score", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert path in [d["path"] for d in response.json()["error"]["details"]]


def test_invalid_json_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.post(
        "/v1/churn/score", content=b'{"customers": [', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_a_batch_over_the_limit_is_a_413(client: TestClient) -> None:
    response = client.post("/v1/churn/score", json={"customers": [CUSTOMER] * 1001})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"


def test_a_request_without_a_key_is_a_401(client: TestClient) -> None:
    response = client.post("/v1/churn/score", json={"customers": [CUSTOMER]}, headers={"X-API-Key": ""})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert (
        client.post(
            "/v1/churn/score", json={"customers": [CUSTOMER]}, headers={"X-API-Key": "wrong"}
        ).status_code
        == 401
    )


def test_a_key_with_the_score_scope_can_score(client: TestClient) -> None:
    response = client.post(
        "/v1/churn/score", json={"customers": [CUSTOMER]}, headers={"X-API-Key": SCORE_ONLY_KEY}
    )
    assert response.status_code == 200


def test_scoring_the_holdout_through_the_api_reproduces_the_training_auc(
    client: TestClient, registry: ModelRegistry, churn_version: int, data_dir: Path
) -> None:
    spec = find_spec("churn")
    dataset = load_dataset(spec, data_dir)
    records = dataset.records(dataset.holdout)
    for record, customer_id in zip(records, dataset.ids[dataset.holdout], strict=True):
        record["customer_id"] = customer_id
    probabilities = []
    for start in range(0, len(records), 1000):
        batch = score(client, records[start : start + 1000], explain=False)["results"]
        probabilities += [r["churn_probability"] for r in batch]
    served_auc = roc_auc_score(dataset.target[dataset.holdout], np.array(probabilities))
    logged_auc = registry.run_metrics(registry.get_version("clm-churn", churn_version))["holdout.roc_auc"]
    assert served_auc == pytest.approx(logged_auc, abs=1e-4)


def test_readiness_is_503_until_a_model_is_loaded(registry: ModelRegistry) -> None:
    with TestClient(create_app(make_settings(registry, ["clm-does-not-exist"]))) as empty:
        response = empty.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "not_ready"
        assert "clm-does-not-exist" in response.json()["error"]["message"]
        scored = empty.post(
            "/v1/churn/score", json={"customers": [CUSTOMER]}, headers={"X-API-Key": "test-admin"}
        )
        assert scored.status_code == 503
        assert scored.json()["error"]["code"] == "model_not_loaded"
        assert empty.get("/healthz").status_code == 200


def test_readiness_is_200_when_every_model_is_loaded(client: TestClient, churn_version: int) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["models"]["clm-churn"] == churn_version


def test_metrics_count_requests_by_route_template_and_expose_the_served_version(
    client: TestClient, churn_version: int
) -> None:
    score(client, [CUSTOMER])
    text = client.get("/metrics").text
    assert 'clm_http_requests_total{method="POST",route="/v1/churn/score",status="200"}' in text
    assert f'clm_model_info{{alias="champion",model="clm-churn",version="{churn_version}"}} 1.0' in text
    assert f'clm_churn_probability_count{{model="clm-churn",version="{churn_version}"}}' in text
