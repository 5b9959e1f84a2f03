"""POST /v1/churn/score."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.schemas.common import ApiRecord, Factor, RecordCheck, RecordId, ScoringRequest, ScoringResponse

TELCO_EXAMPLE: ApiRecord = {
    "customer_id": "7590-VHVEG",
    "gender": "Female",
    "senior_citizen": 0,
    "partner": "Yes",
    "dependents": "No",
    "tenure": 1,
    "phone_service": "No",
    "multiple_lines": "No phone service",
    "internet_service": "DSL",
    "online_security": "No",
    "online_backup": "Yes",
    "device_protection": "No",
    "tech_support": "No",
    "streaming_tv": "No",
    "streaming_movies": "No",
    "contract": "Month-to-month",
    "paperless_billing": "Yes",
    "payment_method": "Electronic check",
    "monthly_charges": 29.85,
    "total_charges": 29.85,
}


class ChurnRequest(ScoringRequest):
    customers: list[ApiRecord] = Field(
        min_length=1,
        description="Customer records with the line's API field names (the Telco line by default), or only the "
        "`customer_id` of a stored customer: "
        "fields not sent come from the customer store (fields sent win); missing fields score as missing.",
        examples=[[TELCO_EXAMPLE], [{"customer_id": "7590-VHVEG"}]],
    )
    explain: bool = Field(
        default=True,
        strict=True,
        description="Return top_factors; false for bulk calls that need scores only.",
    )


class ChurnResult(RecordCheck):
    customer_id: RecordId
    churn_probability: float = Field(ge=0, le=1)
    risk_level: Literal["high", "medium", "low"]
    top_factors: list[Factor] | None = Field(
        default=None, description="Up to 5 reasons; null when explain=false."
    )


class ChurnResponse(ScoringResponse):
    results: list[ChurnResult]
