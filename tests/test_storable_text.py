"""Strings no database holds (NUL, over-long) in an id are a 422 naming the field, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

NUL_ID = "7590\x00VHVEG"
LONG_ID = "7" * 129


def error_of(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("customer_id", [NUL_ID, LONG_ID], ids=["nul", "long"])
@pytest.mark.parametrize("route", ["/v1/churn/score", "/v1/products/match"])
def test_scoring_by_an_id_no_database_holds_is_a_422_naming_it(
    store_client: TestClient, route: str, customer_id: str
) -> None:
    response = store_client.post(
        route, json={"customers": [{"customer_id": "7590-VHVEG"}, {"customer_id": customer_id}]}
    )
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert [d["path"] for d in error["details"]] == ["customers[1].customer_id"]


def test_a_profile_of_an_id_with_a_nul_is_a_422_naming_it(store_client: TestClient) -> None:
    error = error_of(store_client.get("/v1/customers/7590%00VHVEG/profile"))
    assert error["code"] == "validation_error"
    assert [d["path"] for d in error["details"]] == ["customer_id"]
    assert "NUL" in error["details"][0]["message"]


@pytest.mark.parametrize(
    ("outcome", "path"),
    [
        ({"event": "customer_churned", "record_id": NUL_ID}, "outcomes[0].record_id"),
        ({"event": "customer_churned", "record_id": LONG_ID}, "outcomes[0].record_id"),
        (
            {"event": "offer_accepted", "record_id": "7590-VHVEG", "product": "tech\x00support"},
            "outcomes[0].product",
        ),
        ({"event": "lead_converted", "record_id": 660737, "line": "in\x00bound"}, "outcomes[0].line"),
    ],
    ids=["record-nul", "record-long", "product-nul", "line-nul"],
)
def test_an_outcome_naming_a_string_no_database_holds_is_a_422_naming_it(
    store_client: TestClient, outcome: dict[str, Any], path: str
) -> None:
    error = error_of(store_client.post("/v1/outcomes", json={"outcomes": [outcome]}))
    assert error["code"] == "validation_error"
    assert [d["path"] for d in error["details"]] == [path]
