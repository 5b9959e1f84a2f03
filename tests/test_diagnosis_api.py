"""POST /v1/diagnosis through the real app, with a real effect model trained on the real listings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.schemas.diagnosis import LISTING_EXAMPLE
from model_registry.contract import api_name
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_KEY, make_settings
from training.data import frame_records, is_holdout, read_frame
from training.spec import find_spec

LISTING = LISTING_EXAMPLE  # a real listing of the file
OUTCOMES = ["units_sold", "rating", "rating_count", "rating_five_count", "rating_four_count"]


def diagnose(client: TestClient, listings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post("/v1/diagnosis", json={"listings": listings})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def holdout(data_dir: Path) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The holdout listings as a CRM sends them (whole rows, without units_sold) and which are top performers."""
    frame = read_frame(find_spec("diagnosis"), data_dir).rename(columns=api_name)
    frame = frame[[is_holdout(i) for i in frame["product_id"]]]
    top = (frame["units_sold"] >= 5000).to_numpy()
    return frame_records(frame.drop(columns=["units_sold"])), top


def test_a_listing_gets_its_segment_probability_percentile_and_gaps(
    diagnosis_client: TestClient, diagnosis_trained: tuple[int, dict[str, float]]
) -> None:
    response = diagnosis_client.post("/v1/diagnosis", json={"listings": [LISTING]})
    body = response.json()
    assert body["model"] == {"name": "clm-diagnosis", "version": diagnosis_trained[0], "alias": "champion"}
    assert body["request_id"] == response.headers["x-request-id"]
    (result,) = body["results"]
    assert result["product_id"] == LISTING["product_id"]
    assert result["segment"] == "dresses, price 6-10"
    assert result["segment_fallback"] is None
    assert 0 < result["effect_probability"] < 1
    assert 0 <= result["percentile"] <= 100
    assert result["gaps"]
    for gap in result["gaps"]:
        assert gap["estimated_uplift"] > 0
        assert gap["message"]


def test_gaps_come_biggest_uplift_first_and_name_only_levers(
    diagnosis_client: TestClient, holdout: tuple[list[dict[str, Any]], np.ndarray]
) -> None:
    levers = {lever["field"] for lever in _served(diagnosis_client)["settings"]["diagnosis"]["levers"]}
    results = diagnose(diagnosis_client, holdout[0])
    # At least one listing with several gaps, or the order below is never checked.
    assert any(len(r["gaps"]) >= 2 for r in results)
    for result in results:
        uplifts = [g["estimated_uplift"] for g in result["gaps"]]
        assert uplifts == sorted(uplifts, reverse=True)
        assert all(u > 0 for u in uplifts)
        assert {g["metric"] for g in result["gaps"]} <= levers


def test_every_gap_applied_to_the_listing_raises_its_score_by_the_uplift_it_claims(
    diagnosis_client: TestClient, holdout: tuple[list[dict[str, Any]], np.ndarray]
) -> None:
    listings = holdout[0]
    results = diagnose(diagnosis_client, listings)
    applied, claims = [], []
    for listing, result in zip(listings, results, strict=True):
        for gap in result["gaps"]:
            applied.append({**listing, gap["metric"]: gap["benchmark"]})
            claims.append(result["effect_probability"] + gap["estimated_uplift"])
    assert len(applied) > 50
    rescored = [r["effect_probability"] for r in diagnose(diagnosis_client, applied)]
    # Both sides are rounded to 6 decimals in the response.
    assert rescored == pytest.approx(claims, abs=2e-6)


def test_top_performers_of_the_holdout_are_told_of_fewer_gaps_than_the_rest(
    diagnosis_client: TestClient,
    holdout: tuple[list[dict[str, Any]], np.ndarray],
    diagnosis_trained: tuple[int, dict[str, float]],
) -> None:
    listings, top = holdout
    counts = np.array([len(r["gaps"]) for r in diagnose(diagnosis_client, listings)])
    assert np.median(counts[top]) < np.median(counts[~top])
    # The figures training logged are what the route serves.
    figures = diagnosis_trained[1]
    assert figures["gaps_median_top_performers"] == np.median(counts[top])
    assert figures["gaps_median_others"] == np.median(counts[~top])
    assert figures["gaps_mean_others"] == pytest.approx(counts[~top].mean())


def test_outcomes_neither_change_the_score_nor_become_gaps(
    diagnosis_client: TestClient, holdout: tuple[list[dict[str, Any]], np.ndarray]
) -> None:
    listings = holdout[0][:20]
    without = [{k: v for k, v in listing.items() if k not in OUTCOMES} for listing in listings]
    inflated = [
        {**listing, "rating_count": 100000, "units_sold": 100000, "rating": 5.0} for listing in listings
    ]
    # The outcome columns are unknown to the model: listed as such, and nothing else differs.
    plain = [
        {k: v for k, v in r.items() if k != "unknown_fields"} for r in diagnose(diagnosis_client, without)
    ]
    with_outcomes = diagnose(diagnosis_client, inflated)
    assert plain == [{k: v for k, v in r.items() if k != "unknown_fields"} for r in with_outcomes]
    assert all({"rating", "rating_count", "units_sold"} <= set(r["unknown_fields"]) for r in with_outcomes)
    features = {f["name"] for f in _served(diagnosis_client)["features"]}
    assert not features & {*OUTCOMES, "rating_three_count", "rating_two_count", "rating_one_count"}


def test_a_segment_with_too_few_peers_falls_back_to_a_wider_one_and_says_so(
    diagnosis_client: TestClient,
) -> None:
    segments = _served(diagnosis_client)["settings"]["diagnosis"]["segments"]
    assert not segments["swimwear, price 10+"]["scores"]  # 37 training listings: fewer than the 40 needed
    swimsuit = {**LISTING, "tags": "Bikini,Summer,Beach", "price": 12.0}
    (result,) = diagnose(diagnosis_client, [swimsuit])
    assert result["segment"] == "swimwear"
    assert result["segment_fallback"].startswith("swimwear, price 10+ has too few peers")
    assert result["segment_fallback"].endswith("compared with swimwear")


def test_a_listing_without_tags_or_price_is_compared_with_all_listings(diagnosis_client: TestClient) -> None:
    (result,) = diagnose(diagnosis_client, [{"product_id": "bare"}])
    assert result["segment"] == "all listings"
    assert result["segment_fallback"] == "tags and price not given: compared with all listings"
    assert 0 < result["effect_probability"] < 1
    assert result["gaps"]
    for gap in result["gaps"]:
        assert gap["value"] is None
        assert "not given" in gap["message"]


def test_a_higher_probability_stands_higher_in_its_segment(
    diagnosis_client: TestClient, holdout: tuple[list[dict[str, Any]], np.ndarray]
) -> None:
    results = diagnose(diagnosis_client, holdout[0])
    segment = max({r["segment"] for r in results}, key=lambda s: sum(r["segment"] == s for r in results))
    ranked = sorted((r for r in results if r["segment"] == segment), key=lambda r: r["effect_probability"])
    assert len(ranked) > 10
    percentiles = [r["percentile"] for r in ranked]
    assert percentiles == sorted(percentiles)
    assert percentiles[0] < 50 < percentiles[-1]


def test_tag_count_may_be_sent_instead_of_tags(diagnosis_client: TestClient) -> None:
    """The model reads tags as tag_count (its non-empty items); a client may send tag_count itself, which is
    how it applies a gap on tags."""
    assert len([tag for tag in LISTING["tags"].split(",") if tag.strip()]) == 14
    counted = {**LISTING, "tag_count": 14}
    untagged = {**{k: v for k, v in LISTING.items() if k != "tags"}, "tag_count": 14}
    (listing, *same) = diagnose(diagnosis_client, [LISTING, counted, untagged])
    assert [r["effect_probability"] for r in same] == [listing["effect_probability"]] * 2


def test_tags_of_the_wrong_type_are_a_422_even_beside_tag_count(diagnosis_client: TestClient) -> None:
    """tags is then not read, but the record schema says it is text: an object there is refused all the same."""
    listing = {**LISTING, "tag_count": 14, "tags": {}}
    response = diagnosis_client.post("/v1/diagnosis", json={"listings": [listing]})
    assert response.status_code == 422
    assert [d["path"] for d in response.json()["error"]["details"]] == ["listings[0].tags"]


def test_a_missing_urgency_banner_means_none(diagnosis_client: TestClient) -> None:
    """The data leaves has_urgency_banner blank where there is no banner: null and absent score as 0."""
    absent = {k: v for k, v in LISTING.items() if k != "has_urgency_banner"}
    scores = [
        diagnose(diagnosis_client, [listing])[0]["effect_probability"]
        for listing in (absent, {**LISTING, "has_urgency_banner": None}, {**LISTING, "has_urgency_banner": 0})
    ]
    assert scores[0] == scores[1] == scores[2]


def test_bad_fields_are_a_422_naming_each_path(diagnosis_client: TestClient) -> None:
    listings = [LISTING, {**LISTING, "price": "cheap", "tags": 7}, {**LISTING, "product_id": {"id": 1}}]
    response = diagnosis_client.post("/v1/diagnosis", json={"listings": listings})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {d["path"] for d in error["details"]} == {
        "listings[1].price",
        "listings[1].tags",
        "listings[2].product_id",
    }


@pytest.mark.parametrize(("body", "path"), [({}, "listings"), ({"listings": []}, "listings")])
def test_a_malformed_body_is_a_422_with_the_path(diagnosis_client: TestClient, body: dict, path: str) -> None:
    response = diagnosis_client.post("/v1/diagnosis", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert path in [d["path"] for d in response.json()["error"]["details"]]


def test_a_batch_over_the_limit_is_a_413(diagnosis_client: TestClient) -> None:
    response = diagnosis_client.post("/v1/diagnosis", json={"listings": [LISTING] * 1001})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"


def test_a_request_without_a_key_is_a_401(diagnosis_client: TestClient) -> None:
    response = diagnosis_client.post("/v1/diagnosis", json={"listings": [LISTING]}, headers={"X-API-Key": ""})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_without_a_loaded_model_the_route_is_a_503(tmp_path: Path) -> None:
    empty = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))
    with TestClient(create_app(make_settings(empty, ["clm-diagnosis"]))) as client:
        response = client.post(
            "/v1/diagnosis", json={"listings": [LISTING]}, headers={"X-API-Key": SCORE_KEY}
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_not_loaded"


def test_the_served_version_is_ready_and_counts_its_gaps(
    diagnosis_client: TestClient, diagnosis_trained: tuple[int, dict[str, float]]
) -> None:
    version = diagnosis_trained[0]
    assert diagnosis_client.get("/readyz").json()["models"] == {"clm-diagnosis": version}
    diagnose(diagnosis_client, [LISTING])
    text = diagnosis_client.get("/metrics").text
    assert 'clm_http_requests_total{method="POST",route="/v1/diagnosis",status="200"}' in text
    assert f'clm_diagnosis_gaps_count{{model="clm-diagnosis",version="{version}"}}' in text


def _served(client: TestClient) -> dict[str, Any]:
    models = client.get("/v1/models").json()["models"]
    return next(m for m in models if m["name"] == "clm-diagnosis")  # type: ignore[no-any-return]
