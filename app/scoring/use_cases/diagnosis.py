"""Effect diagnosis: each listing's effect probability, where it stands in its segment, and its gaps to the
segment's top performers, biggest uplift first. The logic is the model version's own (model_registry.diagnosis),
the very code training measured on the holdout."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from app import metrics
from app.prediction_log import Prediction
from app.schemas.diagnosis import DiagnosisRequest, DiagnosisResponse
from app.scoring.runtime.scorer import Scorer
from app.scoring.use_cases.base import UseCase
from model_registry.diagnosis import Diagnoser


def compare_findings(champion: dict[str, Any], challenger: dict[str, Any]) -> tuple[list[float], bool]:
    """Shadow scoring's comparison for one listing: the effect probability difference, and whether the biggest
    gap (the first advice a seller reads) changes."""
    difference = abs(champion["effect_probability"] - challenger["effect_probability"])
    return [difference], _first_lever(champion) != _first_lever(challenger)


def _first_lever(result: dict[str, Any]) -> str | None:
    return result["gaps"][0]["metric"] if result["gaps"] else None


def diagnose_listings(scorer: Scorer, listings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per listing, in request order; bad fields are a 422 naming each path."""
    probabilities, _ = scorer.score(listings, "listings", explain=False)
    # Parsing the stored segments costs about 0.3 ms: cheaper to keep simple than to cache per version.
    diagnoser = Diagnoser.model_validate(scorer.metadata["diagnosis"])
    findings = diagnoser.diagnose(listings, probabilities, scorer.bundle.contract, scorer.probabilities)
    histogram = metrics.DIAGNOSIS_GAPS.labels(scorer.name, str(scorer.version))
    results = []
    for listing, finding in zip(listings, findings, strict=True):
        histogram.observe(len(finding.gaps))
        results.append({"product_id": listing.get(scorer.id_field), **asdict(finding)})
    return results


def diagnosis_predictions(results: list[dict[str, Any]]) -> list[Prediction]:
    """What the prediction log keeps of each listing diagnosed: its effect probability."""
    return [Prediction(r["product_id"], r["effect_probability"]) for r in results]


DIAGNOSIS = UseCase(
    name="diagnosis",
    path="/v1/diagnosis",
    score_field="effect_probability",
    operation_id="diagnose_listings",
    summary="Gaps of marketplace listings against the top performers of their segment",
    description="Diagnose 1–1,000 listings with the line's champion effect model; results in request order, "
    "gaps biggest first.",
    request=DiagnosisRequest,
    response=DiagnosisResponse,
    records_field="listings",
    score=lambda scorer, listings, _: diagnose_listings(scorer, listings),
    predictions=lambda _, results: diagnosis_predictions(results),
    compare=compare_findings,
)
