"""The OpenAPI document says what the service does, and its docs pages work without the internet."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from app.schemas.common import ErrorBody


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_error_a_route_declares_is_the_envelope(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and path != "/readyz":
                schema = response["content"]["application/json"]["schema"]
                # The Open Inference Protocol's routes answer in its own shape, {"error": "..."}.
                body = "InferenceError" if path.startswith("/v2") else "ErrorBody"
                assert schema == {"$ref": f"#/components/schemas/{body}"}, (method, path, status)
    assert document["components"]["schemas"]["ErrorBody"]["required"] == list(ErrorBody.model_fields)


def test_every_route_with_input_declares_its_422_and_every_keyed_route_its_401(client: TestClient) -> None:
    for method, path, operation in operations(client.get("/openapi.json").json()):
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in operation["responses"], (method, path)
        if operation.get("security"):
            assert {"401", "403"} <= operation["responses"].keys(), (method, path)


def test_metrics_are_documented_as_prometheus_text(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert list(document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_a_wrong_method_is_a_405_naming_the_allowed_ones(client: TestClient) -> None:
    response = client.get("/v1/churn/score")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_integer_options_take_a_number_without_a_fraction_and_refuse_text(leads_client: TestClient) -> None:
    lead = {"lead_number": 1, "total_visits": 5.0}
    body = {"line": "inbound", "leads": [lead, {**lead, "lead_number": 2}]}
    assert len(leads_client.post("/v1/leads/rank", json={**body, "top_k": 1.0}).json()["results"]) == 1
    for bad in ["1", True, 1.5, 0]:
        assert leads_client.post("/v1/leads/rank", json={**body, "top_k": bad}).status_code == 422, bad


def test_outcomes_document_which_field_each_event_takes(client: TestClient) -> None:
    outcome = client.get("/openapi.json").json()["components"]["schemas"]["OutcomeIn"]
    shapes = {shape["properties"]["event"]["const"]: shape for shape in outcome["oneOf"]}
    assert shapes["lead_converted"]["required"] == ["event", "line"]
    assert shapes["offer_accepted"]["required"] == ["event", "product"]
    assert shapes["customer_churned"]["properties"]["product"] == {"type": "null"}
    # The products the served catalogue holds; no lead line is served by this app.
    assert "online_security" in shapes["offer_accepted"]["properties"]["product"]["enum"]
    assert shapes["lead_converted"]["properties"]["line"] == {"enum": []}


def test_swagger_ui_and_redoc_load_their_assets_from_the_service(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert assets, page
        for asset in assets:
            assert asset.startswith("/"), (page, asset)  # nothing from a CDN
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 1000, asset
