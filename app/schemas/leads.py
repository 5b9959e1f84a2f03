"""POST /v1/leads/score and POST /v1/leads/rank."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, StrictInt

from app.schemas.common import ApiRecord, Factor, RecordCheck, ScoringRequest, ScoringResponse, integral

INBOUND_EXAMPLE: ApiRecord = {
    "lead_number": 660737,
    "lead_origin": "Landing Page Submission",
    "lead_source": "Google",
    "do_not_email": "No",
    "do_not_call": "No",
    "total_visits": 5.0,
    "total_time_spent_on_website": 1532,
    "page_views_per_visit": 2.5,
    "country": "India",
    "specialization": "Business Administration",
    "what_is_your_current_occupation": "Working Professional",
    "city": "Mumbai",
}


class LeadsRequest(ScoringRequest):
    line: str = Field(  # leads have no default line: required
        min_length=1,
        max_length=64,
        description="The lead line whose model scores the leads: inbound or outbound (GET /v1/models lists "
        "the served clm-leads-<line> models).",
        examples=["inbound"],
    )
    leads: list[ApiRecord] = Field(
        min_length=1,
        description="Lead records with the line's API field names, each with its ID (lead_number for inbound, "
        "contact_id for outbound); missing fields and unseen categories score as missing.",
        examples=[[INBOUND_EXAMPLE]],
    )
    explain: bool = Field(
        default=True,
        strict=True,
        description="Return top_factors; false for bulk calls that need scores only.",
    )


class RankRequest(LeadsRequest):
    # The bound on the union's integer member, before the validator: given on the field (or after it), pydantic
    # wrote it into the OpenAPI document as "ge", no JSON Schema keyword, and the document allowed the 0 refused.
    top_k: Annotated[StrictInt, Field(ge=1), BeforeValidator(integral)] | None = Field(
        default=None,
        description="Return only the best top_k leads of the pool; all of them when absent.",
    )


class LeadResult(RecordCheck):
    """One scored lead. It also echoes the lead's ID under the line's ID field (lead_number for inbound,
    contact_id for outbound), so a line added later keeps its own ID name."""

    model_config = ConfigDict(extra="allow")

    conversion_probability: float = Field(ge=0, le=1, description="Probability that the lead converts.")
    score: int = Field(
        ge=0,
        le=100,
        description="0-100: the lead's percentile among the leads the version was validated on; 90 means it "
        "scores at least as high as about 90 % of them.",
    )
    grade: str = Field(
        description="A (best) to D, by the cut-offs stored with the version; GET /v1/models gives each "
        "grade's meaning and the conversion observed in it on the holdout.",
        examples=["A"],
    )
    top_factors: list[Factor] | None = Field(
        default=None, description="Up to 5 reasons; null when explain=false."
    )


class RankedLead(LeadResult):
    rank: int = Field(ge=1, description="1 = the lead to work first.")


class LeadsResponse(ScoringResponse):
    results: list[LeadResult] = Field(description="One per lead, in request order.")


class RankResponse(ScoringResponse):
    results: list[RankedLead] = Field(
        description="The pool, best first, cut to top_k: by conversion probability as returned, highest first "
        "(so by score; the probability orders leads that share a score), and leads with the same probability "
        "in request order."
    )
