"""Whatever a client sends, the answer is a clear 4xx in the error envelope, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.test_churn_api import CUSTOMER
from tests.test_products_api import CUSTOMER as PRODUCTS_CUSTOMER


@pytest.mark.parametrize(
    ("raw_body", "path"),
    [
        ('{"customers": [{"tenure": 1e308}]}', "customers[0].tenure"),  # beyond float32
        ('{"customers": [{"tenure": -4e38}]}', "customers[0].tenure"),
        ('{"customers": [{"tenure": ' + "9" * 400 + "}]}", "customers[0].tenure"),  # beyond float64
        ('{"customers": [{"tenure": NaN}]}', "customers[0].tenure"),
        ('{"customers": [{"tenure": Infinity}]}', "customers[0].tenure"),
        ('{"customers": [{"tenure": {"nested": [1]}}]}', "customers[0].tenure"),
        ('{"customers": [{"customer_id": "\\ud800"}]}', "body"),  # a lone surrogate is not valid JSON text
        ('{"customers": [{"customer_id": "' + "x" * 300 + '"}]}', "customers[0].customer_id"),
        ('{"customers": [{"customer_id": 1.5}]}', "customers[0].customer_id"),
        ('{"customers": [', "body"),
        ('{"customers": [{"contract": ["Two year"]}]}', "customers[0].contract"),
    ],
)
def test_a_bad_value_is_a_422_naming_its_path(client: TestClient, raw_body: str, path: str) -> None:
    response = client.post(
        "/v1/churn/score", content=raw_body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] in {"validation_error", "invalid_body"}
    assert path in [d["path"] for d in error["details"]]


def test_invalid_json_is_a_422_naming_the_byte_where_it_breaks(client: TestClient) -> None:
    response = client.post(
        "/v1/churn/score",
        content=b'{"customers":\n [{"tenure": 1,}]}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    (detail,) = response.json()["error"]["details"]
    assert detail["path"] == "body"
    assert detail["message"].startswith("invalid JSON at byte 29:"), detail


def test_a_body_that_is_not_utf8_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/v1/churn/score", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"][0]["path"] == "body"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tenure", True, "must be a finite number (|x| <= 3.4e38) or null"),
        ("senior_citizen", False, "must be a finite number (|x| <= 3.4e38) or null"),
        ("contract", 2, "must be a string or null"),
        ("contract", True, "must be a string or null"),
    ],
)
def test_a_wrong_json_type_for_a_field_is_a_422_naming_its_path(
    client: TestClient, field: str, value: object, message: str
) -> None:
    response = client.post("/v1/churn/score", json={"customers": [CUSTOMER, {**CUSTOMER, field: value}]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [{"path": f"customers[1].{field}", "message": message}]


def test_an_error_reply_carries_the_callers_request_id(client: TestClient) -> None:
    response = client.post(
        "/v1/churn/score", json={"customers": [{"tenure": "x"}]}, headers={"X-Request-ID": "trace-me-123"}
    )
    assert response.headers["x-request-id"] == "trace-me-123"


@pytest.mark.parametrize(
    ("route", "body", "path"),
    [
        ("/v1/churn/score", {"customers": [CUSTOMER], "explain": "yes"}, "explain"),
        ("/v1/products/match", {"customers": [PRODUCTS_CUSTOMER], "top_n": True}, "top_n"),
    ],
)
def test_a_switch_or_count_of_the_wrong_json_type_is_a_422_not_coerced(
    client: TestClient, route: str, body: dict[str, object], path: str
) -> None:
    response = client.post(route, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert [d["path"] for d in response.json()["error"]["details"]] == [path]
