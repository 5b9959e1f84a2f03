"""POST /v1/diagnosis."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.schemas.common import ApiRecord, RecordCheck, RecordId, ScoringRequest, ScoringResponse

LISTING_EXAMPLE: ApiRecord = {
    "product_id": "58940d436a0d3d5da4e95a38",
    "price": 8.0,
    "retail_price": 22,
    "uses_ad_boosts": 1,
    "badge_local_product": 0,
    "badge_product_quality": 0,
    "badge_fast_shipping": 0,
    "tags": "Mini,womens dresses,Summer,Patchwork,fashion dress,Dress,Mini dress,Women's Fashion,"
    "Women S Clothing,backless,party,summer dresses,sleeveless,,Casual",
    "product_variation_inventory": 50,
    "shipping_option_price": 2,
    "shipping_is_express": 0,
    "countries_shipped_to": 41,
    "inventory_total": 50,
    "has_urgency_banner": 1,
    "origin_country": "CN",
    "merchant_rating_count": 17752,
    "merchant_rating": 3.8996732762505633,
    "merchant_has_profile_picture": 0,
}


class DiagnosisRequest(ScoringRequest):
    listings: list[ApiRecord] = Field(
        min_length=1,
        description="Marketplace listings with API field names (the data set's columns); missing fields score as "
        "missing. `tags` places a listing in its category and gives tag_count, unless tag_count is sent itself.",
        examples=[[LISTING_EXAMPLE]],
    )


class Gap(BaseModel):
    """One lever where the listing falls short of its segment's top performers."""

    metric: str = Field(description="The listing's field (API name): set it to `benchmark` to close the gap")
    value: int | float | None = Field(description="The listing's value now; null when it was not given")
    benchmark: int | float = Field(
        description="The median of the segment's top performers: a value the field takes"
    )
    estimated_uplift: float = Field(
        gt=0, le=1, description="Effect probability with this field at the benchmark, minus the current one"
    )
    message: str = Field(description="For a rep to read out")


class DiagnosisResult(RecordCheck):
    product_id: RecordId
    segment: str = Field(description="The peer group benchmarked against, e.g. 'dresses, price 6-10'")
    segment_fallback: str | None = Field(
        description="Null when the listing's own (narrowest) group was used; else why a wider one was"
    )
    effect_probability: float = Field(ge=0, le=1, description="Probability of being a top performer")
    percentile: float = Field(
        ge=0, le=100, description="Where that probability stands among the segment's listings"
    )
    gaps: list[Gap] = Field(
        description="Biggest estimated_uplift first; only gaps that raise the probability"
    )


class DiagnosisResponse(ScoringResponse):
    results: list[DiagnosisResult]
