"""POST /v1/leads/score and /v1/leads/rank through the real app, with real models of both lead lines."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from model_registry.registry import ModelRegistry
from training.data import Dataset, id_field, load_dataset
from training.spec import find_spec

LEAD = {
    "lead_number": 660737,
    "lead_origin": "Lead Add Form",
    "lead_source": "Reference",
    "do_not_email": "No",
    "total_visits": 5.0,
    "total_time_spent_on_website": 1532,
    "page_views_per_visit": 2.5,
    "what_is_your_current_occupation": "Working Professional",
}
CONTACT = {
    "contact_id": 41187,
    "age": 74,
    "job": "retired",
    "marital": "married",
    "contact": "cellular",
    "month": "nov",
    "campaign": 3,
    "pdays": 999,
    "poutcome": "failure",
    "nr_employed": 4963.6,
}


@pytest.fixture(scope="module")
def datasets(data_dir: Path) -> dict[str, Dataset]:
    """Each line's rows as training saw them, with the ID each record carries in the API."""
    return {line: load_dataset(find_spec("leads", line), data_dir) for line in ("inbound", "outbound")}


def api_records(dataset: Dataset, mask: np.ndarray, line: str) -> list[dict[str, Any]]:
    records = dataset.records(mask)
    field = id_field(find_spec("leads", line))
    for record, record_id in zip(records, dataset.ids[mask].tolist(), strict=True):
        record[field] = record_id
    return records


def score(client: TestClient, line: str, leads: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/leads/score", json={"line": line, "leads": leads, **extra})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def rank(client: TestClient, line: str, leads: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    response = client.post("/v1/leads/rank", json={"line": line, "leads": leads, **extra})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def test_a_lead_gets_a_probability_score_grade_and_reasons(
    leads_client: TestClient, inbound_version: int
) -> None:
    body = score(leads_client, "inbound", [LEAD])
    assert body["model"] == {"name": "clm-leads-inbound", "version": inbound_version, "alias": "champion"}
    (result,) = body["results"]
    assert result["lead_number"] == 660737
    assert 0 < result["conversion_probability"] < 1
    assert 0 <= result["score"] <= 100
    assert result["grade"] in {"A", "B", "C", "D"}
    factors = result["top_factors"]
    assert 1 <= len(factors) <= 5
    impacts = [abs(f["impact"]) for f in factors]
    assert impacts == sorted(impacts, reverse=True)
    for factor in factors:
        assert factor["value"] == LEAD.get(factor["feature"])


def test_a_category_given_as_a_reason_names_its_value(leads_client: TestClient) -> None:
    (result,) = score(leads_client, "inbound", [LEAD])["results"]
    origin = next(f for f in result["top_factors"] if f["feature"] == "lead_origin")
    assert origin["value"] == "Lead Add Form"
    assert origin["impact"] > 0


def test_results_come_in_request_order_under_the_lines_id_field(leads_client: TestClient) -> None:
    contacts = [{**CONTACT, "contact_id": i, "age": 20 + 10 * i} for i in range(5)]
    results = score(leads_client, "outbound", contacts)["results"]
    assert [r["contact_id"] for r in results] == [0, 1, 2, 3, 4]
    assert all("lead_number" not in r for r in results)


@pytest.mark.parametrize("path", ["/v1/leads/score", "/v1/leads/rank"])
def test_an_unknown_line_is_a_404_naming_the_lines_served(leads_client: TestClient, path: str) -> None:
    response = leads_client.post(path, json={"line": "partner", "leads": [LEAD]})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "inbound, outbound" in error["message"]
    assert error["details"][0]["path"] == "line"


def test_an_unknown_category_scores_as_missing(leads_client: TestClient) -> None:
    # A lead whose source is among its top factors (third for the test model), so that reason can be checked.
    lead = {
        **LEAD,
        "lead_origin": "Landing Page Submission",
        "what_is_your_current_occupation": "Unemployed",
        "total_time_spent_on_website": 0,
    }
    unseen = {**lead, "lead_source": "Carrier pigeon"}
    missing = {**lead, "lead_source": None}
    first, second = score(leads_client, "inbound", [unseen, missing])["results"]
    assert first["conversion_probability"] == second["conversion_probability"]
    assert first["grade"] == second["grade"]
    reasons = {f["feature"]: f["value"] for f in first["top_factors"]}
    assert "lead_source" in reasons, reasons
    assert reasons["lead_source"] is None


def test_explain_false_skips_the_reasons_but_not_the_grade(leads_client: TestClient) -> None:
    (result,) = score(leads_client, "inbound", [LEAD], explain=False)["results"]
    assert result["top_factors"] is None
    assert result["grade"] in {"A", "B", "C", "D"}


def test_a_bad_field_is_a_422_naming_its_path(leads_client: TestClient) -> None:
    response = leads_client.post(
        "/v1/leads/score", json={"line": "inbound", "leads": [LEAD, {**LEAD, "total_visits": "five"}]}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert [d["path"] for d in response.json()["error"]["details"]] == ["leads[1].total_visits"]


def test_a_pool_over_the_limit_is_a_413(leads_client: TestClient) -> None:
    response = leads_client.post("/v1/leads/rank", json={"line": "inbound", "leads": [LEAD] * 1001})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"


def test_top_k_below_one_is_a_422(leads_client: TestClient) -> None:
    response = leads_client.post("/v1/leads/rank", json={"line": "inbound", "leads": [LEAD], "top_k": 0})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"][0]["path"] == "top_k"


def test_real_leads_on_each_cut_off_get_that_grade_through_the_api(
    leads_client: TestClient, registry: ModelRegistry, inbound_version: int, datasets: dict[str, Dataset]
) -> None:
    """Each cut-off is a validation lead's own probability: that lead, and the next one down, get scored."""
    bundle = registry.load("clm-leads-inbound", inbound_version)
    dataset = datasets["inbound"]
    leads = api_records(dataset, dataset.validation, "inbound")
    matrix, _ = bundle.contract.encode(leads)
    probabilities = np.asarray(bundle.boosters["model"].inplace_predict(matrix), dtype=np.float64)
    grades = bundle.metadata["grades"]
    for better, worse in pairwise(grades):
        cutoff = better["min_probability"]
        on = int(np.flatnonzero(probabilities == cutoff)[0])
        below = int(np.argmax(np.where(probabilities < cutoff, probabilities, -1.0)))
        results = score(leads_client, "inbound", [leads[on], leads[below]], explain=False)["results"]
        assert [r["grade"] for r in results] == [better["grade"], worse["grade"]]


def test_the_pool_comes_back_best_first_with_ranks_and_grades(
    leads_client: TestClient, datasets: dict[str, Dataset]
) -> None:
    dataset = datasets["outbound"]
    pool = api_records(dataset, dataset.holdout, "outbound")[:1000]
    ranked = rank(leads_client, "outbound", pool)
    assert len(ranked) == 1000
    assert [r["rank"] for r in ranked] == list(range(1, 1001))
    probabilities = [r["conversion_probability"] for r in ranked]
    assert probabilities == sorted(probabilities, reverse=True)
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    grades = [r["grade"] for r in ranked]
    assert grades == sorted(grades)
    assert {r["contact_id"] for r in ranked} == {lead["contact_id"] for lead in pool}
    assert all(r["top_factors"] for r in ranked)


def test_top_k_returns_only_the_best_leads_of_the_pool(
    leads_client: TestClient, datasets: dict[str, Dataset]
) -> None:
    dataset = datasets["inbound"]
    pool = api_records(dataset, dataset.holdout, "inbound")[:200]
    everything = rank(leads_client, "inbound", pool, explain=False)
    best = rank(leads_client, "inbound", pool, top_k=10)
    assert [r["lead_number"] for r in best] == [r["lead_number"] for r in everything[:10]]
    assert [r["rank"] for r in best] == list(range(1, 11))
    assert all(r["top_factors"] for r in best)
    assert len(rank(leads_client, "inbound", pool[:3], top_k=10)) == 3


def test_leads_with_the_same_probability_keep_their_request_order(leads_client: TestClient) -> None:
    pool = [{**LEAD, "lead_number": n} for n in (30, 10, 20)]
    stronger = {**LEAD, "lead_number": 99, "total_time_spent_on_website": 2000}
    weaker = {**LEAD, "lead_number": 1, "lead_origin": None, "total_time_spent_on_website": 0}
    ranked = rank(leads_client, "inbound", [weaker, *pool, stronger], explain=False)
    tied = [r for r in ranked if r["lead_number"] in (30, 10, 20)]
    assert [r["lead_number"] for r in tied] == [30, 10, 20]
    assert [r["rank"] for r in tied] == [tied[0]["rank"], tied[0]["rank"] + 1, tied[0]["rank"] + 2]
    assert ranked[-1]["lead_number"] == 1


@pytest.mark.parametrize("line", ["inbound", "outbound"])
def test_scoring_the_holdout_through_the_api_reproduces_the_training_auc(
    leads_client: TestClient,
    registry: ModelRegistry,
    datasets: dict[str, Dataset],
    inbound_version: int,
    outbound_version: int,
    line: str,
) -> None:
    dataset = datasets[line]
    leads = api_records(dataset, dataset.holdout, line)
    probabilities: list[float] = []
    for start in range(0, len(leads), 1000):
        batch = score(leads_client, line, leads[start : start + 1000], explain=False)["results"]
        probabilities += [r["conversion_probability"] for r in batch]
    served_auc = roc_auc_score(dataset.target[dataset.holdout], np.array(probabilities))
    version = {"inbound": inbound_version, "outbound": outbound_version}[line]
    logged = registry.run_metrics(registry.get_version(f"clm-leads-{line}", version))["holdout.roc_auc"]
    assert served_auc == pytest.approx(logged, abs=1e-4)


def test_readiness_and_the_models_list_cover_every_line(
    leads_client: TestClient, inbound_version: int, outbound_version: int
) -> None:
    ready = leads_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"] == {
        "clm-leads-inbound": inbound_version,
        "clm-leads-outbound": outbound_version,
    }
    served = {m["name"]: m for m in leads_client.get("/v1/models").json()["models"]}
    assert set(served) == {"clm-leads-inbound", "clm-leads-outbound"}
    for model in served.values():
        assert [g["grade"] for g in model["settings"]["grades"]] == ["A", "B", "C", "D"]
        assert model["holdout_metrics"]["grades_fall_strictly"] == 1.0


def test_metrics_count_grades_by_line_and_probabilities_by_version(
    leads_client: TestClient, outbound_version: int
) -> None:
    (result,) = score(leads_client, "outbound", [CONTACT])["results"]
    text = leads_client.get("/metrics").text
    assert (
        f'clm_lead_grades_total{{grade="{result["grade"]}",line="outbound",version="{outbound_version}"}}'
        in text
    )
    assert (
        f'clm_lead_conversion_probability_count{{model="clm-leads-outbound",version="{outbound_version}"}}'
        in text
    )
    assert 'clm_http_requests_total{method="POST",route="/v1/leads/score",status="200"}' in text
