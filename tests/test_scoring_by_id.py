"""POST /v1/churn/score with stored customers: records carrying only `customer_id` are filled from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from model_registry.registry import ModelRegistry
from tests.conftest import Databases, load_demo_customers
from tests.test_churn_api import CUSTOMER  # 7590-VHVEG as the Telco file holds it
from tests.test_prediction_log import PostgresOutage, serving


def score(client: TestClient, customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post("/v1/churn/score", json={"customers": customers})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def test_a_stored_customer_scores_by_id_exactly_as_its_full_record(store_client: TestClient) -> None:
    (by_id,) = score(store_client, [{"customer_id": "7590-VHVEG"}])
    (whole,) = score(store_client, [CUSTOMER])
    assert by_id == whole


def test_fields_sent_with_the_id_win_over_the_stored_ones(store_client: TestClient) -> None:
    (mixed,) = score(store_client, [{"customer_id": "7590-VHVEG", "contract": "Two year", "tenure": 40}])
    (whole,) = score(store_client, [{**CUSTOMER, "contract": "Two year", "tenure": 40}])
    assert mixed == whole


def test_a_batch_mixes_stored_ids_and_whole_records_in_request_order(store_client: TestClient) -> None:
    results = score(store_client, [{"customer_id": "5575-GNVDE"}, CUSTOMER, {"customer_id": "3668-QPYBK"}])
    assert [r["customer_id"] for r in results] == ["5575-GNVDE", "7590-VHVEG", "3668-QPYBK"]


def test_an_unknown_id_alone_is_a_404_naming_each_unknown_record(store_client: TestClient) -> None:
    response = store_client.post(
        "/v1/churn/score",
        json={"customers": [{"customer_id": "7590-VHVEG"}, {"customer_id": "NO-SUCH"}, {"customer_id": 42}]},
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert [d["path"] for d in error["details"]] == ["customers[1].customer_id", "customers[2].customer_id"]


def test_an_unknown_id_with_fields_scores_as_sent(store_client: TestClient) -> None:
    prospect = {"customer_id": "NEW-1", "tenure": 2, "contract": "Month-to-month"}
    (result,) = score(store_client, [prospect])
    assert result["customer_id"] == "NEW-1"
    assert 0 < result["churn_probability"] < 1


def test_product_offers_for_a_stored_customer_by_id_are_those_of_its_full_record(
    store_client: TestClient,
) -> None:
    def match(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = store_client.post("/v1/products/match", json={"customers": customers})
        assert response.status_code == 200, response.text
        return response.json()["results"]  # type: ignore[no-any-return]

    (by_id,) = match([{"customer_id": "7590-VHVEG"}])
    (whole,) = match([CUSTOMER])
    # The same offers; the fields the model does not read are the caller's only when the caller sent them.
    assert by_id.pop("unknown_fields") == []
    assert whole.pop("unknown_fields") == ["monthly_charges", "total_charges"]
    assert by_id == whole
    assert by_id["recommendations"]
    strict = store_client.post(
        "/v1/products/match", json={"customers": [{"customer_id": "7590-VHVEG"}], "strict": True}
    )
    assert strict.status_code == 200, strict.text
    unknown = store_client.post("/v1/products/match", json={"customers": [{"customer_id": "NO-SUCH"}]})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["details"][0]["path"] == "customers[0].customer_id"


def test_while_postgresql_is_down_by_id_is_a_503_and_whole_records_still_score(
    registry: ModelRegistry, churn_version: int, databases: Databases, data_dir: Path
) -> None:
    url = databases.new("postgresql")
    load_demo_customers(url, data_dir)
    outage = PostgresOutage(url)
    with serving(registry, outage.app_url) as client:
        outage.begin()
        by_id = client.post("/v1/churn/score", json={"customers": [{"customer_id": "7590-VHVEG"}]})
        whole = client.post("/v1/churn/score", json={"customers": [CUSTOMER]})
        outage.end()
        again = client.post("/v1/churn/score", json={"customers": [{"customer_id": "7590-VHVEG"}]})
    assert by_id.status_code == 503
    assert by_id.json()["error"]["code"] == "database_unavailable"
    assert whole.status_code == 200
    assert again.status_code == 200
