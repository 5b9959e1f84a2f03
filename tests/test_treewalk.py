"""Probabilities from the walk of the trees (app/scoring/runtime/treewalk.py), with XGBoost's predictor as the
reference: bit for bit on every holdout row of every served model line, with missing values, and the scorer
giving the same probabilities whether a batch is walked or left to XGBoost."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.treeshap import Unsupported
from app.scoring.runtime.treewalk import MAX_WALK_ROWS, TreeWalk
from model_registry.catalogue import ProductCatalogue, hide_fields
from model_registry.registry import ModelRegistry
from tests.test_treeshap import LINES, trained_bundle, with_missing_fields
from training.data import load_dataset
from training.spec import find_spec


@pytest.mark.parametrize(("use_case", "line", "fixture"), LINES, ids=[f"{u}-{line}" for u, line, _ in LINES])
def test_every_holdout_row_of_every_served_line_walks_to_xgboosts_probability(
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
    assert len(matrix) > 100
    rows = with_missing_fields(matrix, bundle.contract)
    if use_case == "products":  # each product is scored with its own fields hidden too
        catalogue = ProductCatalogue.from_metadata(bundle.metadata)
        rows = np.vstack(
            [rows, *(hide_fields(rows, bundle.contract, p.hidden_fields) for p in catalogue.products)]
        )
    for booster in bundle.boosters.values():
        # The same bits: a record's risk level or grade never depends on the path that scored it.
        np.testing.assert_array_equal(
            TreeWalk.of(booster).probabilities(rows), booster.predict(xgb.DMatrix(rows))
        )


def test_deep_trees_with_missing_values_and_a_base_score_not_a_half_walk_to_xgboosts_probability() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.25] = np.nan
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) ** 2 > 0.8).astype(np.float32)
    params = {
        "objective": "binary:logistic",
        "max_depth": 9,
        "eta": 0.3,
        "nthread": 1,
        "min_child_weight": 0.1,
    }
    booster = xgb.train(params, xgb.DMatrix(x, y, missing=np.nan), num_boost_round=30)
    np.testing.assert_array_equal(TreeWalk.of(booster).probabilities(x), booster.predict(xgb.DMatrix(x)))


def test_a_booster_the_walk_does_not_handle_is_refused_as_is_a_matrix_of_other_columns() -> None:
    x = np.random.default_rng(1).normal(size=(200, 3)).astype(np.float32)
    booster = xgb.train({"objective": "reg:squarederror", "nthread": 1}, xgb.DMatrix(x, x[:, 0]), 3)
    with pytest.raises(Unsupported, match="objective reg:squarederror"):
        TreeWalk.of(booster)
    with pytest.raises(ValueError, match=r"expected a \(rows, 3\) matrix"):
        TreeWalk.of(
            xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, (x[:, 0] > 0).astype(np.float32)), 2)
        ).probabilities(np.zeros((1, 4), dtype=np.float32))


def test_small_batches_walked_and_large_ones_left_to_xgboost_score_alike(
    registry: ModelRegistry, products_version: int, data_dir: Path
) -> None:
    bundle = registry.load("clm-products", products_version)
    scorer = Scorer("clm-products", products_version, "champion", datetime.now(UTC), bundle)
    scorer.check()
    dataset = load_dataset(find_spec("products"), data_dir)
    matrix = scorer.encode(dataset.records(dataset.holdout)[: 3 * MAX_WALK_ROWS], "customers")
    large = scorer.probabilities_by_booster(matrix)  # more than MAX_WALK_ROWS: the stacked booster
    for start in range(0, len(matrix), MAX_WALK_ROWS):
        small = scorer.probabilities_by_booster(matrix[start : start + MAX_WALK_ROWS])
        for key, booster in bundle.boosters.items():
            expected = booster.predict(xgb.DMatrix(matrix[start : start + MAX_WALK_ROWS]))
            np.testing.assert_array_equal(small[key], expected)
            np.testing.assert_array_equal(small[key], large[key][start : start + MAX_WALK_ROWS])
            np.testing.assert_array_equal(
                scorer.probabilities(matrix[start : start + MAX_WALK_ROWS], key), expected
            )


def test_a_walk_that_disagrees_with_xgboost_at_load_is_dropped_for_xgboosts_path(
    registry: ModelRegistry, churn_version: int, caplog: pytest.LogCaptureFixture
) -> None:
    bundle = registry.load("clm-churn", churn_version)
    scorer = Scorer("clm-churn", churn_version, "champion", datetime.now(UTC), bundle)
    walk = scorer._walks["model"]
    # A walk built from other trees (a defect in the walk would look like this): the check must catch it.
    scorer._walks["model"] = TreeWalk(**{**vars(walk), "threshold": walk.threshold + np.float32(0.01)})
    with caplog.at_level(logging.ERROR):
        scorer.check()
    assert "the walked probabilities differ from XGBoost's" in caplog.text
    assert "model" not in scorer._walks
    one = np.zeros((1, bundle.contract.n_columns), dtype=np.float32)
    np.testing.assert_array_equal(
        scorer.probabilities(one), bundle.boosters["model"].predict(xgb.DMatrix(one))
    )
