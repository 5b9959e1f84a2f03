"""Binary XGBoost boosters over the same columns, stacked into one multi-target booster for scoring.

A product-model version holds one booster per product (each trained without its own product's field).
Scoring one customer for every product took one predict call per booster, and for a single row XGBoost's
fixed cost per call (~0.15 ms) is nearly all of it: seven products, 1.16 ms. Stacked, the trees of every
booster sit in one booster with one output per booster (`tree_info` names the output a tree adds to, and each
output keeps its booster's own base score), so one call gives every probability: 0.17 ms, and the same
float32 values the boosters give one by one (tests/test_products_api.py). Built from XGBoost's JSON model
format (doc/model.schema in XGBoost) when a version is loaded; nothing of it is stored in the registry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import xgboost as xgb


class StackingError(ValueError):
    """The boosters cannot be stacked into one (another objective, categorical splits, other columns)."""


def stack_boosters(boosters: Mapping[str, xgb.Booster]) -> xgb.Booster:
    """One booster whose `predict` gives a (rows, len(boosters)) array, columns in `boosters` order."""
    models = [json.loads(booster.save_raw("json")) for booster in boosters.values()]
    stacked = models[0]
    trees: list[dict[str, Any]] = []
    targets: list[int] = []
    base_scores: list[str] = []
    for target, (name, model) in enumerate(zip(boosters, models, strict=True)):
        learner = model["learner"]
        _require_stackable(name, learner, stacked["learner"])
        base_scores.append(learner["learner_model_param"]["base_score"].strip("[]"))
        for tree in learner["gradient_booster"]["model"]["trees"]:
            trees.append({**tree, "id": len(trees)})
            targets.append(target)
    learner = stacked["learner"]
    learner["learner_model_param"].update(
        num_target=str(len(models)), base_score="[" + ",".join(base_scores) + "]"
    )
    tree_model = learner["gradient_booster"]["model"]
    tree_model.update(trees=trees, tree_info=targets, iteration_indptr=[0, len(trees)])
    tree_model["gbtree_model_param"]["num_trees"] = str(len(trees))
    result = xgb.Booster()
    result.load_model(bytearray(json.dumps(stacked).encode()))
    nthread = json.loads(next(iter(boosters.values())).save_config())["learner"]["generic_param"]["nthread"]
    result.set_param({"nthread": nthread})
    return result


def _require_stackable(name: str, learner: dict[str, Any], first: dict[str, Any]) -> None:
    params = learner["learner_model_param"]
    problems = []
    if learner["objective"]["name"] != "binary:logistic":
        problems.append(f"objective {learner['objective']['name']}, not binary:logistic")
    if learner["gradient_booster"]["name"] != "gbtree":
        problems.append(f"booster {learner['gradient_booster']['name']}, not gbtree")
    if params["num_target"] != "1" or params["num_class"] != "0":
        problems.append("more than one output")
    if params["num_feature"] != first["learner_model_param"]["num_feature"]:
        problems.append("a different number of columns")
    if any(tree["categories"] for tree in learner["gradient_booster"]["model"]["trees"]):
        problems.append("categorical splits")
    if problems:
        raise StackingError(f"booster {name!r} cannot be stacked: {'; '.join(problems)}")
