"""The product boosters stacked into one (model_registry/stacking.py) score exactly as each booster alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from model_registry.registry import ModelRegistry
from model_registry.stacking import StackingError, stack_boosters
from training.data import load_dataset
from training.spec import find_spec


def test_the_stacked_booster_gives_each_boosters_own_probabilities_on_the_holdout(
    registry: ModelRegistry, products_version: int, data_dir: Path
) -> None:
    bundle = registry.load("clm-products", products_version)
    dataset = load_dataset(find_spec("products"), data_dir)
    matrix, errors = bundle.contract.encode(dataset.records(dataset.holdout))
    assert not errors
    assert len(matrix) > 1000
    data = xgb.DMatrix(matrix, missing=np.nan)

    stacked = stack_boosters(bundle.boosters).predict(data)

    assert len(bundle.boosters) == 7
    assert stacked.shape == (len(matrix), 7)
    for column, booster in enumerate(bundle.boosters.values()):
        np.testing.assert_array_equal(stacked[:, column], booster.predict(data))


def test_boosters_of_another_objective_are_refused_by_name() -> None:
    rows = np.random.default_rng(0).normal(size=(200, 4))
    binary = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(rows, label=rows[:, 0] > 0), 3)
    regression = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(rows, label=rows[:, 1]), 3)

    with pytest.raises(StackingError, match=r"'spend'.*reg:squarederror"):
        stack_boosters({"buys": binary, "spend": regression})
