"""POST /v1/products/match through the real app, with a real registered products model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from model_registry.contract import api_name
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_KEY, make_settings
from training.data import frame_records, is_holdout, read_frame
from training.spec import find_spec

INTERNET_ADD_ONS = [
    "online_security",
    "online_backup",
    "device_protection",
    "tech_support",
    "streaming_tv",
    "streaming_movies",
]
PRODUCTS = [*INTERNET_ADD_ONS, "multiple_lines"]

# A fibre and phone customer who owns online backup and streaming TV, and not the other five.
CUSTOMER: dict[str, Any] = {
    "customer_id": "0001-TEST",
    "gender": "Female",
    "senior_citizen": 0,
    "partner": "Yes",
    "dependents": "No",
    "tenure": 30,
    "phone_service": "Yes",
    "multiple_lines": "No",
    "internet_service": "Fiber optic",
    "online_security": "No",
    "online_backup": "Yes",
    "device_protection": "No",
    "tech_support": "No",
    "streaming_tv": "Yes",
    "streaming_movies": "No",
    "contract": "One year",
    "paperless_billing": "Yes",
    "payment_method": "Credit card (automatic)",
    "monthly_charges": 95.5,
    "total_charges": 2865.0,
}


def offerable(customer: dict[str, Any]) -> set[str]:
    """What the customer lacks and may buy, by EVALUATION.md's rules written out apart from the service."""
    internet = customer.get("internet_service") not in (None, "No")
    phone = customer.get("phone_service") == "Yes"
    lacks = {p for p in PRODUCTS if customer.get(p) == "No"}
    return {p for p in lacks if (phone if p == "multiple_lines" else internet)}


def match(client: TestClient, customers: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    response = client.post("/v1/products/match", json={"customers": customers, **options})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def holdout_customers(data_dir: Path) -> list[dict[str, Any]]:
    """Every holdout row of the Telco file as a CRM would send it: all columns, bill and churn included."""
    frame = read_frame(find_spec("products"), data_dir).rename(columns=api_name)
    return frame_records(frame[frame["customer_id"].map(is_holdout)])


def test_a_customer_gets_its_three_best_offers_ranked_with_reasons(
    client: TestClient, products_version: int
) -> None:
    response = client.post("/v1/products/match", json={"customers": [CUSTOMER]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "clm-products", "version": products_version, "alias": "champion"}
    (result,) = body["results"]
    assert result["customer_id"] == "0001-TEST"
    offers = result["recommendations"]
    assert [o["rank"] for o in offers] == [1, 2, 3]
    assert {o["product"] for o in offers} <= offerable(CUSTOMER)
    propensities = [o["propensity"] for o in offers]
    assert propensities == sorted(propensities, reverse=True)
    assert all(0 < p < 1 for p in propensities)
    for offer in offers:
        assert 1 <= len(offer["top_factors"]) <= 5
        # Reasons come from the product's own booster, which never sees the product's own field.
        assert offer["product"] not in {f["feature"] for f in offer["top_factors"]}


def test_the_offers_are_the_best_of_all_the_customer_may_buy(client: TestClient) -> None:
    (everything,) = match(client, [CUSTOMER], top_n=7, explain=False)
    (best_two,) = match(client, [CUSTOMER], top_n=2, explain=False)
    assert {o["product"] for o in everything["recommendations"]} == offerable(CUSTOMER)
    assert best_two["recommendations"] == everything["recommendations"][:2]


def test_a_customer_who_owns_every_product_it_may_buy_gets_an_empty_list(client: TestClient) -> None:
    no_phone = {**CUSTOMER, "phone_service": "No", "multiple_lines": "No phone service"}
    owns_all = {**no_phone, **dict.fromkeys(INTERNET_ADD_ONS, "Yes")}
    nothing_at_all = {
        **no_phone,
        "internet_service": "No",
        **dict.fromkeys(INTERNET_ADD_ONS, "No internet service"),
    }
    results = match(client, [owns_all, nothing_at_all])
    assert [r["recommendations"] for r in results] == [[], []]


def test_a_phone_only_customer_is_offered_only_the_phone_add_on(client: TestClient) -> None:
    phone_only = {
        **CUSTOMER,
        "internet_service": "No",
        **dict.fromkeys(INTERNET_ADD_ONS, "No internet service"),
    }
    (result,) = match(client, [phone_only])
    assert [o["product"] for o in result["recommendations"]] == ["multiple_lines"]


def test_a_product_whose_field_is_absent_or_null_is_never_offered(client: TestClient) -> None:
    absent = {k: v for k, v in CUSTOMER.items() if k != "online_security"}
    null = {**CUSTOMER, "device_protection": None}
    unknown = {**CUSTOMER, "tech_support": "Maybe"}
    results = match(client, [absent, null, unknown], top_n=7)
    assert "online_security" not in {o["product"] for o in results[0]["recommendations"]}
    assert "device_protection" not in {o["product"] for o in results[1]["recommendations"]}
    assert "tech_support" not in {o["product"] for o in results[2]["recommendations"]}


def test_without_the_eligibility_field_the_products_it_governs_are_never_offered(client: TestClient) -> None:
    no_internet_field = {k: v for k, v in CUSTOMER.items() if k != "internet_service"}
    null_phone = {**CUSTOMER, "phone_service": None}
    results = match(client, [no_internet_field, null_phone], top_n=7)
    assert [o["product"] for o in results[0]["recommendations"]] == ["multiple_lines"]
    assert {o["product"] for o in results[1]["recommendations"]} == offerable(CUSTOMER) - {"multiple_lines"}


def test_explain_false_skips_the_reasons(client: TestClient) -> None:
    (result,) = match(client, [CUSTOMER], explain=False)
    assert result["recommendations"]
    assert all(o["top_factors"] is None for o in result["recommendations"])


def test_owned_or_ineligible_products_are_never_offered_to_any_holdout_customer(
    client: TestClient, holdout_customers: list[dict[str, Any]]
) -> None:
    assert len(holdout_customers) > 1000
    results = []
    for start in range(0, len(holdout_customers), 1000):
        results += match(client, holdout_customers[start : start + 1000], top_n=7, explain=False)
    assert [r["customer_id"] for r in results] == [c["customer_id"] for c in holdout_customers]
    for customer, result in zip(holdout_customers, results, strict=True):
        # Exactly what the customer lacks and may buy: nothing owned or ineligible, nothing left out.
        assert {o["product"] for o in result["recommendations"]} == offerable(customer), customer[
            "customer_id"
        ]
    assert any(not r["recommendations"] for r in results)


@pytest.mark.parametrize("top_n", [0, 11, "three"])
def test_a_top_n_out_of_range_is_rejected_naming_the_field(client: TestClient, top_n: object) -> None:
    response = client.post("/v1/products/match", json={"customers": [CUSTOMER], "top_n": top_n})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert [d["path"] for d in response.json()["error"]["details"]] == ["top_n"]


def test_bad_fields_are_rejected_naming_each_path(client: TestClient) -> None:
    bad = {**CUSTOMER, "tenure": "long", "online_backup": True}
    response = client.post("/v1/products/match", json={"customers": [CUSTOMER, bad]})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    paths = {d["path"] for d in response.json()["error"]["details"]}
    assert paths == {"customers[1].tenure", "customers[1].online_backup"}


def test_a_batch_over_the_limit_is_refused(client: TestClient) -> None:
    response = client.post("/v1/products/match", json={"customers": [CUSTOMER] * 1001, "explain": False})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"


def test_a_request_without_a_key_is_unauthorized(client: TestClient) -> None:
    response = client.post("/v1/products/match", json={"customers": [CUSTOMER]}, headers={"X-API-Key": ""})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_without_a_loaded_version_matching_is_unavailable_and_not_ready(
    registry: ModelRegistry, products_version: int
) -> None:
    settings = make_settings(registry, ["clm-products"], alias="no-such-alias")
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as unready:
        response = unready.post("/v1/products/match", json={"customers": [CUSTOMER]})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_not_loaded"
        ready = unready.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"


def test_the_models_list_shows_the_catalogue_and_its_holdout_figures(
    client: TestClient, products_version: int
) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    (served,) = [m for m in response.json()["models"] if m["name"] == "clm-products"]
    assert served["version"] == products_version
    catalogue = {p["name"]: p for p in served["settings"]["products"]}
    assert list(catalogue) == PRODUCTS
    assert catalogue["tech_support"]["eligible_when"]["field"] == "internet_service"
    assert catalogue["multiple_lines"]["eligible_when"] == {
        "field": "phone_service",
        "any_of": ["Yes"],
        "none_of": [],
    }
    assert catalogue["streaming_tv"]["hidden_fields"] == ["streaming_tv"]
    metrics = served["holdout_metrics"]
    assert 0.5 < metrics["roc_auc"] < 0.95
    assert {f"{p}.roc_auc" for p in PRODUCTS} <= set(metrics)
    assert {"ranking.hit_at_3", "ranking.popularity_hit_at_3"} <= set(metrics)
    assert client.get("/readyz").json()["models"]["clm-products"] == products_version


def test_offers_are_counted_by_product_in_the_metrics(client: TestClient, products_version: int) -> None:
    (result,) = match(client, [CUSTOMER], top_n=1)
    best = result["recommendations"][0]["product"]
    text = client.get("/metrics").text
    assert (
        f'clm_product_offers_total{{model="clm-products",product="{best}",rank="1",version="{products_version}"}}'
        in text
    )


def test_served_propensities_are_what_each_booster_gives_with_its_hidden_fields_missing(
    client: TestClient, registry: ModelRegistry, products_version: int, data_dir: Path
) -> None:
    """Serving scores all boosters on one shared matrix; training hid each product's fields. Same scores."""

    from model_registry.catalogue import ProductCatalogue, hide_fields

    bundle = registry.load("clm-products", products_version)
    catalogue = ProductCatalogue.from_metadata(bundle.metadata)
    frame = read_frame(find_spec("products"), data_dir).rename(columns=api_name)
    customers = [c for c in frame_records(frame) if c["internet_service"] != "No"][:40]
    results = client.post("/v1/products/match", json={"customers": customers, "top_n": 7, "explain": False})
    matrix, _ = bundle.contract.encode(customers)
    checked = 0
    for row, result in enumerate(results.json()["results"]):
        for offer in result["recommendations"]:
            product = next(p for p in catalogue.products if p.name == offer["product"])
            hidden = hide_fields(matrix[[row]], bundle.contract, product.hidden_fields)
            expected = float(bundle.boosters[product.name].inplace_predict(hidden)[0])
            assert offer["propensity"] == pytest.approx(expected, abs=1e-6)
            checked += 1
    assert checked > 40
