"""Exact reasons from the TreeSHAP tables (app/scoring/runtime/treeshap.py), with XGBoost's own exact TreeSHAP
(`pred_contribs=True, approx_contribs=False`) as the reference: on every holdout row of every served model line,
with missing values, and through the routes that explain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import xgboost as xgb
from fastapi.testclient import TestClient

from app.main import create_app
from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.treeshap import TreeShap, Unsupported
from model_registry.bundle import ModelBundle
from model_registry.catalogue import ProductCatalogue, hide_fields
from model_registry.contract import FeatureContract
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_KEY, make_settings
from training.data import id_field, load_dataset
from training.spec import find_spec

TOLERANCE = 1e-5

# (use case, line, the conftest fixture that trains and registers it): every line the service serves by default
LINES = [
    ("churn", None, "churn_version"),
    ("churn", "card", "card_trained"),
    ("leads", "inbound", "inbound_version"),
    ("leads", "outbound", "outbound_version"),
    ("products", None, "products_version"),
    ("diagnosis", None, "diagnosis_trained"),
]


def trained_bundle(
    request: pytest.FixtureRequest, registry: ModelRegistry, use_case: str, line: str | None, fixture: str
) -> ModelBundle:
    version = request.getfixturevalue(fixture)
    version = version[0] if isinstance(version, tuple) else version
    return registry.load(find_spec(use_case, line).registered_model, version)


def with_missing_fields(
    matrix: npt.NDArray[np.float32], contract: FeatureContract
) -> npt.NDArray[np.float32]:
    """The rows, then each row again with about a third of its fields missing (as an API record without them
    encodes), then a row with every field missing."""
    rng = np.random.default_rng(15)
    holed = matrix.copy()
    for index, feature in enumerate(contract.features):
        rows = rng.random(len(holed)) < 0.35
        start = contract.column_offsets[index]
        holed[np.ix_(rows, np.arange(start, start + feature.width))] = np.nan
    missing = np.full((1, contract.n_columns), np.nan, dtype=np.float32)
    return np.vstack([matrix, holed, missing])


def assert_exact(booster: xgb.Booster, rows: npt.NDArray[np.float32]) -> float:
    """The tables' contributions, margins and probabilities against XGBoost's; returns the largest difference."""
    tables = TreeShap.of(booster)
    margins, contributions = tables.explain(rows)
    data = xgb.DMatrix(rows, missing=np.nan)
    reference = booster.predict(data, pred_contribs=True, approx_contribs=False)
    np.testing.assert_allclose(contributions, reference, rtol=0, atol=TOLERANCE)
    # Summed in float32 in XGBoost's order, with its sigmoid: the same bits, so a record scores the same with
    # and without reasons (a risk level or grade never flips on `explain`).
    np.testing.assert_array_equal(margins, booster.predict(data, output_margin=True))
    np.testing.assert_array_equal(tables.probabilities(margins), booster.predict(data))
    return float(np.max(np.abs(contributions - reference)))


@pytest.mark.parametrize(("use_case", "line", "fixture"), LINES, ids=[f"{u}-{line}" for u, line, _ in LINES])
def test_every_holdout_row_of_every_served_line_gets_xgboosts_exact_contributions(
    request: pytest.FixtureRequest,
    registry: ModelRegistry,
    data_dir: Path,
    use_case: str,
    line: str | None,
    fixture: str,
) -> None:
    bundle = trained_bundle(request, registry, use_case, line, fixture)
    dataset = load_dataset(find_spec(use_case, line), data_dir)
    matrix, errors = bundle.contract.encode(dataset.records(dataset.holdout))
    assert not errors
    assert len(matrix) == dataset.holdout.sum() > 100
    rows = with_missing_fields(matrix, bundle.contract)
    assert np.isnan(rows).any()
    hidden = {}
    if use_case == "products":  # the route explains each product on the matrix with its own fields hidden
        catalogue = ProductCatalogue.from_metadata(bundle.metadata)
        hidden = {p.name: hide_fields(rows, bundle.contract, p.hidden_fields) for p in catalogue.products}
    assert bundle.boosters
    for key, booster in bundle.boosters.items():
        assert_exact(booster, rows)
        if key in hidden:
            assert_exact(booster, hidden[key])


@pytest.mark.parametrize(("depth", "columns", "rows", "rounds"), [(8, 5, 3000, 25), (10, 10, 1500, 10)])
def test_deep_trees_that_split_a_feature_again_and_again_with_missing_values_are_exact(
    depth: int, columns: int, rows: int, rounds: int
) -> None:
    # Deeper than any served spec: splits walked one by one above the blocks, leaves below more distinct
    # features than a block holds, a feature split several times on one path, default branches both ways,
    # a base score that is not 0.5.
    rng = np.random.default_rng(depth)
    x = rng.normal(size=(rows, columns)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    filled = np.nan_to_num(x)
    y = (filled[:, 0] + filled[:, 1] * filled[:, 2] + 0.5 * rng.normal(size=len(x)) > 0.3).astype(np.float32)
    params = {
        "objective": "binary:logistic",
        "max_depth": depth,
        "eta": 0.3,
        "nthread": 1,
        "min_child_weight": 0.1,
    }
    booster = xgb.train(params, xgb.DMatrix(x, y, missing=np.nan), num_boost_round=rounds)
    assert assert_exact(booster, x) <= TOLERANCE


def test_a_booster_the_tables_do_not_handle_is_refused_by_them() -> None:
    x = np.random.default_rng(1).normal(size=(200, 3)).astype(np.float32)
    booster = xgb.train({"objective": "reg:squarederror", "nthread": 1}, xgb.DMatrix(x, x[:, 0]), 3)
    with pytest.raises(Unsupported, match="objective reg:squarederror"):
        TreeShap.of(booster)


def per_field(
    bundle: ModelBundle, matrix: npt.NDArray[np.float32], approximate: bool, booster: str = "model"
) -> npt.NDArray[np.float64]:
    """XGBoost's contributions summed per API field: the reference for a route's reasons."""
    raw = bundle.boosters[booster].predict(
        xgb.DMatrix(matrix, missing=np.nan), pred_contribs=True, approx_contribs=approximate
    )[:, :-1]
    contract = bundle.contract
    return np.stack(
        [
            raw[:, offset : offset + f.width].sum(axis=1)
            for f, offset in zip(contract.features, contract.column_offsets, strict=True)
        ],
        axis=1,
    )


def assert_reasons_are(
    factors: list[dict[str, Any]], reference: npt.NDArray[np.float64], bundle: ModelBundle
) -> None:
    """The reasons are the fields XGBoost ranks first, with its impacts (rounded to 6 places in the API)."""
    names = [f.name for f in bundle.contract.features]
    assert 1 <= len(factors) <= 5
    for factor in factors:
        assert factor["impact"] == pytest.approx(reference[names.index(factor["feature"])], abs=TOLERANCE)
    named = {factor["feature"] for factor in factors}
    weakest_named = min(abs(reference[names.index(n)]) for n in named)
    strongest_other = max(
        (abs(v) for n, v in zip(names, reference, strict=True) if n not in named), default=0
    )
    assert weakest_named >= strongest_other - TOLERANCE


def test_churn_reasons_and_probabilities_through_the_route_are_xgboosts(
    client: TestClient, registry: ModelRegistry, churn_version: int, data_dir: Path
) -> None:
    bundle = registry.load("clm-churn", churn_version)
    dataset = load_dataset(find_spec("churn"), data_dir)
    customers = dataset.records(dataset.holdout)[:40]
    customers[0] = {k: v for k, v in customers[0].items() if k not in ("tenure", "contract")}  # missing
    response = client.post("/v1/churn/score", json={"customers": customers})
    assert response.status_code == 200, response.text
    matrix, _ = bundle.contract.encode(customers)
    reference = per_field(bundle, matrix, approximate=False)
    expected = bundle.boosters["model"].inplace_predict(matrix)
    for row, result in enumerate(response.json()["results"]):
        assert result["churn_probability"] == round(float(expected[row]), 6)
        assert_reasons_are(result["top_factors"], reference[row], bundle)


def test_lead_reasons_through_the_score_and_rank_routes_are_xgboosts(
    leads_client: TestClient, registry: ModelRegistry, inbound_version: int, data_dir: Path
) -> None:
    bundle = registry.load("clm-leads-inbound", inbound_version)
    spec = find_spec("leads", "inbound")
    dataset = load_dataset(spec, data_dir)
    leads = dataset.records(dataset.holdout)[:30]
    field = id_field(spec)
    for row, lead in enumerate(leads):
        lead[field] = row
    matrix, _ = bundle.contract.encode(leads)
    reference = per_field(bundle, matrix, approximate=False)
    for path in ("/v1/leads/score", "/v1/leads/rank"):
        response = leads_client.post(path, json={"line": "inbound", "leads": leads, "explain": True})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert len(results) == len(leads)
        for result in results:
            assert_reasons_are(result["top_factors"], reference[result[field]], bundle)


def test_offer_reasons_through_the_match_route_are_each_products_booster(
    client: TestClient, registry: ModelRegistry, products_version: int, data_dir: Path
) -> None:
    bundle = registry.load("clm-products", products_version)
    catalogue = ProductCatalogue.from_metadata(bundle.metadata)
    dataset = load_dataset(find_spec("products"), data_dir)
    customers = dataset.records(dataset.holdout)[:25]
    response = client.post("/v1/products/match", json={"customers": customers, "top_n": 7})
    assert response.status_code == 200, response.text
    matrix, _ = bundle.contract.encode(customers)
    offered = 0
    for row, result in enumerate(response.json()["results"]):
        for offer in result["recommendations"]:
            product = next(p for p in catalogue.products if p.name == offer["product"])
            hidden = hide_fields(matrix[row : row + 1], bundle.contract, product.hidden_fields)
            reference = per_field(bundle, hidden, approximate=False, booster=product.name)[0]
            assert_reasons_are(offer["top_factors"], reference, bundle)
            offered += 1
    assert offered > 20


def test_exact_contributions_false_still_gives_xgboosts_approximation(
    registry: ModelRegistry, churn_version: int, data_dir: Path
) -> None:
    bundle = registry.load("clm-churn", churn_version)
    dataset = load_dataset(find_spec("churn"), data_dir)
    customers = dataset.records(dataset.holdout)[:20]
    settings = make_settings(registry, ["clm-churn"], exact_contributions=False)
    with TestClient(create_app(settings)) as approximate_client:
        approximate_client.headers["X-API-Key"] = SCORE_KEY
        response = approximate_client.post("/v1/churn/score", json={"customers": customers})
    assert response.status_code == 200, response.text
    matrix, _ = bundle.contract.encode(customers)
    approximate = per_field(bundle, matrix, approximate=True)
    exact = per_field(bundle, matrix, approximate=False)
    assert not np.allclose(
        approximate, exact, atol=1e-3
    )  # the two differ, so the check below tells them apart
    for row, result in enumerate(response.json()["results"]):
        assert_reasons_are(result["top_factors"], approximate[row], bundle)


def test_a_scorer_explains_with_the_tables_only_when_exact(
    registry: ModelRegistry, churn_version: int
) -> None:
    from datetime import UTC, datetime

    bundle = registry.load("clm-churn", churn_version)
    matrix = np.full((2, bundle.contract.n_columns), np.nan, dtype=np.float32)
    matrix[0] = 0
    for exact in (True, False):
        scorer = Scorer(
            "clm-churn", churn_version, "champion", datetime.now(UTC), bundle, exact_contributions=exact
        )
        scorer.check()
        got = scorer.contributions(matrix)
        np.testing.assert_allclose(
            got, per_field(bundle, matrix, approximate=not exact), rtol=0, atol=TOLERANCE
        )


def test_a_records_reasons_do_not_depend_on_the_batch_it_comes_in(
    registry: ModelRegistry, churn_version: int, data_dir: Path
) -> None:
    from datetime import UTC, datetime

    # Batches build reasons with numpy, a few records row by row: the same reasons either way.
    bundle = registry.load("clm-churn", churn_version)
    scorer = Scorer(
        "clm-churn", churn_version, "champion", datetime.now(UTC), bundle, exact_contributions=True
    )
    dataset = load_dataset(find_spec("churn"), data_dir)
    customers = dataset.records(dataset.holdout)[:60]
    customers[3] = {k: v for k, v in customers[3].items() if k not in ("contract", "tenure")}
    customers[4] = {**customers[4], "payment_method": "Bitcoin"}  # unseen: named with a null value, if named
    probabilities, batch = scorer.score(customers, "customers", explain=True)
    assert batch is not None
    for row, customer in enumerate(customers):
        alone, reasons = scorer.score([customer], "customers", explain=True)
        assert reasons == [batch[row]]
        assert alone[0] == probabilities[row]


def test_impacts_are_rounded_as_round_does() -> None:
    from app.scoring.runtime.scorer import round_half_even

    rng = np.random.default_rng(6)
    values = np.concatenate(
        [rng.normal(scale=scale, size=50_000).astype(np.float32) for scale in (1e-5, 1e-3, 0.1, 2.0)]
    ).astype(np.float64)
    # exact halves at the sixth decimal (0.0078125 = 7812.5e-6), zeros, and values either side of a half
    edges = [
        0.0078125,
        -0.0078125,
        0.0,
        -0.0,
        1.5e-6,
        2.5e-6,
        np.nextafter(2.5e-6, 1),
        np.nextafter(2.5e-6, 0),
    ]
    values = np.concatenate([values, edges]).reshape(-1, 4)
    assert round_half_even(values, 6) == [[round(v, 6) for v in row] for row in values.tolist()]
