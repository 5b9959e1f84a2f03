"""Scoring routes send the results they build without FastAPI validating them again (app/json_io.py): these
tests hold every scoring route's real responses, reasons included, to the response model its OpenAPI promises."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.schemas.churn import ChurnResponse
from app.schemas.customers import ProfileResponse
from app.schemas.diagnosis import DiagnosisResponse
from app.schemas.leads import LeadsResponse, RankResponse
from app.schemas.products import ProductMatchResponse
from tests.test_churn_api import CUSTOMER
from tests.test_diagnosis_api import LISTING
from tests.test_leads_api import LEAD


def holds_to(schema: type[BaseModel], response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    # Strict: no coercion hides a wrong type; and nothing is sent that the model does not declare.
    assert schema.model_validate_json(response.content, strict=True).model_dump(mode="json") == body
    return body


@pytest.mark.parametrize("explain", [True, False])
def test_churn_responses_hold_to_their_model(client: TestClient, explain: bool) -> None:
    body = holds_to(
        ChurnResponse,
        client.post("/v1/churn/score", json={"customers": [CUSTOMER, {"tenure": 3}], "explain": explain}),
    )
    assert (body["results"][0]["top_factors"] is not None) is explain


def test_product_responses_hold_to_their_model(client: TestClient) -> None:
    body = holds_to(ProductMatchResponse, client.post("/v1/products/match", json={"customers": [CUSTOMER]}))
    assert body["results"][0]["recommendations"][0]["top_factors"]


def test_lead_responses_hold_to_their_model(leads_client: TestClient) -> None:
    holds_to(LeadsResponse, leads_client.post("/v1/leads/score", json={"line": "inbound", "leads": [LEAD]}))
    holds_to(
        RankResponse, leads_client.post("/v1/leads/rank", json={"line": "inbound", "leads": [LEAD, LEAD]})
    )


def test_diagnosis_responses_hold_to_their_model(diagnosis_client: TestClient) -> None:
    holds_to(DiagnosisResponse, diagnosis_client.post("/v1/diagnosis", json={"listings": [LISTING]}))


def test_profile_responses_hold_to_their_model(store_client: TestClient) -> None:
    holds_to(ProfileResponse, store_client.get("/v1/customers/7590-VHVEG/profile"))
