"""POST /v1/products/match."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.schemas.churn import TELCO_EXAMPLE
from app.schemas.common import (
    ApiRecord,
    Factor,
    JsonInt,
    RecordCheck,
    RecordId,
    ScoringRequest,
    ScoringResponse,
)

MAX_TOP_N = 10


class ProductMatchRequest(ScoringRequest):
    customers: list[ApiRecord] = Field(
        min_length=1,
        description=(
            "Telco customer records with API field names, or only the `customer_id` of a stored customer "
            "(fields not sent come from the customer store; fields sent win). A product is offered only when its field "
            '(e.g. online_security) is "No" and the customer is eligible (internet_service for the '
            "internet add-ons, phone_service for multiple_lines): a product or eligibility field that is "
            "absent or null rules the product out, since the customer may own it already or may not be "
            "able to buy it."
        ),
        examples=[[TELCO_EXAMPLE], [{"customer_id": "7590-VHVEG"}]],
    )
    top_n: JsonInt = Field(default=3, ge=1, le=MAX_TOP_N, description="Most offers per customer, best first.")
    explain: bool = Field(
        default=True,
        strict=True,
        description="Return top_factors; false for bulk calls that need no reasons.",
    )


class Recommendation(BaseModel):
    product: str = Field(description="The add-on, named as its API field, e.g. online_security.")
    propensity: float = Field(
        ge=0, le=1, description="Probability that a customer like this one owns the product."
    )
    rank: int = Field(ge=1, description="1 is the best offer for this customer.")
    top_factors: list[Factor] | None = Field(
        default=None, description="Up to 5 reasons from this product's model; null when explain=false."
    )


class ProductMatchResult(RecordCheck):
    customer_id: RecordId
    recommendations: list[Recommendation] = Field(
        description="Products the customer lacks and may buy, highest propensity first; empty if none."
    )


class ProductMatchResponse(ScoringResponse):
    results: list[ProductMatchResult]
