"""A served booster's probabilities without XGBoost's per-call cost.

XGBoost's predictor is built for batches: for one row of the products model (7 boosters, 1,300 trees stacked)
`predict` took 1.2 ms and `inplace_predict` 0.7 ms on this machine, nearly all of it fixed cost per call and
per tree, while walking 1,300 trees three or four levels deep is a few thousand comparisons. A profile scored on
view, and every single-record scoring request, pays that cost. This walks the trees in a compiled loop instead:
2.5-5 us for one row of a 100-300-tree booster against XGBoost's 140-460 us (`python -m bench.contributions`,
one thread each, as the service runs them). XGBoost's predictor is 1-4x faster per row on large batches of real
rows (it walks a block of rows tree by tree); the scorer walks up to MAX_WALK_ROWS rows and leaves larger
batches to XGBoost.

The margin is summed as XGBoost sums it (float32, from the base margin, one leaf per tree in tree order) and
turned into a probability by XGBoost's own sigmoid (treeshap.probabilities): booster.predict's probabilities
bit for bit (tests/test_treewalk.py; checked again for every version the service loads, see Scorer.check).
Only binary:logistic gbtree boosters with numeric splits are walked, as the TreeSHAP tables require.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from app.scoring.runtime.treeshap import TreeShap, Unsupported, logit32, numba_jit, require_supported

# Where the two meet on the served models: the walk costs 2-7 us a row, XGBoost 0.1-0.3 ms a call plus 1-4 us a
# row, equal at 60-140 rows.
MAX_WALK_ROWS = 64


@dataclass(frozen=True)
class TreeWalk:
    """One booster's trees as flat node arrays: children by absolute index, -1 below a leaf."""

    n_columns: int
    base_margin: np.float32
    roots: npt.NDArray[np.int64]
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float32]  # a leaf's value where the node is a leaf, as XGBoost's JSON keeps it
    default_left: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, booster: xgb.Booster) -> TreeWalk:
        learner = json.loads(booster.save_raw("json"))["learner"]
        require_supported(learner)
        trees = learner["gradient_booster"]["model"]["trees"]
        if any(
            tree.get("categories") or any(int(k) != 0 for k in tree.get("split_type", [])) for tree in trees
        ):
            raise Unsupported("it has categorical splits")
        sizes = np.asarray([len(tree["left_children"]) for tree in trees], dtype=np.int64)
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

        def children(key: str) -> npt.NDArray[np.int64]:
            local = [np.asarray(tree[key], dtype=np.int64) for tree in trees]
            return np.concatenate(
                [np.where(c < 0, -1, c + root) for c, root in zip(local, roots, strict=True)]
            )

        return cls(
            n_columns=int(learner["learner_model_param"]["num_feature"]),
            base_margin=logit32(float(learner["learner_model_param"]["base_score"].strip("[]"))),
            roots=roots,
            left=children("left_children"),
            right=children("right_children"),
            feature=np.concatenate([tree["split_indices"] for tree in trees]).astype(np.int64),
            threshold=np.concatenate([tree["split_conditions"] for tree in trees]).astype(np.float32),
            default_left=np.concatenate([tree["default_left"] for tree in trees]).astype(np.bool_),
        )

    def probabilities(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """booster.predict's probabilities for these rows (NaN is a missing value)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_columns:
            raise ValueError(f"expected a (rows, {self.n_columns}) matrix, got {matrix.shape}")
        margins = np.empty(len(matrix), dtype=np.float32)
        _margins()(
            matrix,
            self.roots,
            self.left,
            self.right,
            self.feature,
            self.threshold,
            self.default_left,
            self.base_margin,
            margins,
        )
        return TreeShap.probabilities(margins)


def _margins_kernel(
    x: Any,
    roots: Any,
    left: Any,
    right: Any,
    feature: Any,
    threshold: Any,
    default_left: Any,
    base_margin: Any,
    out: Any,
) -> None:  # pragma: no cover - compiled by numba
    for row in range(x.shape[0]):
        margin = base_margin
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                value = x[row, feature[node]]
                go_left = value < threshold[node] or (value != value and default_left[node])
                node = left[node] if go_left else right[node]
            margin += threshold[node]
        out[row] = margin


@cache
def _margins() -> Any:
    return numba_jit(_margins_kernel)
