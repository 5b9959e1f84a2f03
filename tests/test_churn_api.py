"""POST /v1/churn/score through the real app, with a real registered model."""

from __future__ import annotations

from fastapi.testclient import TestClient

CUSTOMER = {
    "customer_id": "7590-VHVEG", "gender": "Female", "senior_citizen": 0, "partner": "Yes", "dependents": "No",
    "tenure": 1, "phone_service": "No", "multiple_lines": "No phone service", "internet_service": "DSL",
    "online_security": "No", "online_backup": "Yes", "device_protection": "No", "tech_support": "No",
    "streaming_tv": "No", "streaming_movies": "No", "contract": "Month-to-month", "paperless_billing": "Yes",
    "payment_method": "Electronic check", "monthly_charges": 29.85, "total_charges": 29.85,
}


def test_a_customer_gets_a_probability_risk_level_and_reasons(client: TestClient, churn_version: int) -> None:
    response = client.post("/v1/churn/score", json={"customers": [CUSTOMER]})
    assert response.status_code == 200
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
