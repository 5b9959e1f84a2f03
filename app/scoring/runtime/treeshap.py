"""Exact TreeSHAP for a served XGBoost booster, with its margins and probabilities from the same pass.

The values are XGBoost's own exact contributions (`pred_contribs=True, approx_contribs=False`): path-dependent
TreeSHAP, which weighs the branches not taken by their training cover (Lundberg et al. 2020, "From local
explanations to global understanding with explainable AI for trees", Nature Machine Intelligence 2:56-67,
Algorithm 2). They are computed the way of Fast TreeSHAP v2 (Yang 2021, "Fast TreeSHAP: Accelerating SHAP
value computation for trees", arXiv:2109.09847, section 3.2): a leaf's share of every Shapley value depends on
the row only through a few bits, so it is tabled once per loaded version and a row costs one walk of each tree.

For a leaf l, with value v and the distinct features F (|F| = d) split on along its path: z_j is the product
of the cover ratios (child cover / parent cover) of the path's splits on feature j, and o_j(x) is 1 when row x
takes the path's branch at every split on j (a missing value takes the node's default branch). The tree's
expectation given the features in S is the sum over leaves of v * prod_{j in F} (o_j if j in S else z_j), so
the leaf adds to feature i in F

    phi_i = v * (o_i - z_i) * sum_{S subset of F - {i}} |S|! (d - |S| - 1)! / d!
                                  * prod_{j in S} o_j * prod_{j in F - S - {i}} z_j

which depends on x only through the d bits o. At load, each leaf gets a table of 2^d x d values (the subset
sum as the coefficients of prod_{j != i} (z_j + o_j t)); a row then sets the bits of every leaf in one pass
over the tree's nodes (a node clears the bit of its feature on the branch the row does not take) and adds one
table row per leaf. The leaf whose bits are all set is the one the row reaches: its value goes to the margin,
summed in float32 in tree order from the base margin, and the sigmoid is XGBoost's own (common::Sigmoid), so
the probabilities are booster.predict's. Contributions are summed in float64 (XGBoost sums in float32: the two
agree within 1e-5 on every holdout row of every served model, tests/test_treeshap.py).

Only what the served models use is handled: binary:logistic gbtree boosters with numeric splits; anything else
raises Unsupported and the scorer keeps XGBoost's own path. The kernels are compiled by numba at the first load
in a process (cached on disk where a cache directory is writable; see `_kernels`).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import xgboost as xgb

log = logging.getLogger(__name__)

# Distinct features on one path: the tables hold 2^d x d values per leaf. The served trees are 3-4 deep.
MAX_PATH_FEATURES = 12
# All of a booster's tables together; beyond this (very deep or very many trees) XGBoost's path is kept.
MAX_TABLE_BYTES = 64 * 1024 * 1024


class Unsupported(ValueError):
    """This booster is not one the tables handle; XGBoost's own path explains it."""


class _Kernels(NamedTuple):
    explain: Any
    sigmoid: Any
    tables: Any


@dataclass(frozen=True)
class TreeShap:
    """One booster's trees, flattened tree after tree in depth-first order, and its leaves' tables."""

    n_columns: int
    base_margin: np.float32
    expected_value: float  # XGBoost's bias column: the base margin plus each tree's cover-weighted mean
    tree_start: npt.NDArray[np.int32]  # tree t's nodes are [tree_start[t], tree_start[t + 1])
    # per node; a leaf has feature -1, children are indexes within the tree (always after their parent)
    feature: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.float32]
    left: npt.NDArray[np.int32]
    right: npt.NDArray[np.int32]
    default_left: npt.NDArray[np.bool_]
    bit: npt.NDArray[np.int32]  # the bit of the node's feature among the distinct features of its path
    leaf: npt.NDArray[np.int32]  # the leaf's index, -1 at a split
    # per leaf: its value, its path's distinct features (features[feature_start[l]:feature_start[l + 1]]) and
    # its table (table[table_start[l] + bits * d + k] is what feature k of the path gets for those bits)
    leaf_value: npt.NDArray[np.float32]
    feature_start: npt.NDArray[np.int64]
    features: npt.NDArray[np.int32]
    table_start: npt.NDArray[np.int64]
    table: npt.NDArray[np.float64]

    @classmethod
    def of(cls, booster: xgb.Booster) -> TreeShap:
        """Read the booster's trees (its JSON model, doc/model.schema in XGBoost) and build the tables."""
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        _require_supported(learner)
        params = learner["learner_model_param"]
        n_columns = int(params["num_feature"])
        base_margin = _logit32(float(params["base_score"].strip("[]")))
        nodes = _Nodes()
        for tree in learner["gradient_booster"]["model"]["trees"]:
            nodes.add_tree(tree)
        tables = nodes.table_sizes()
        if int(tables[-1]) * 8 > MAX_TABLE_BYTES:
            raise Unsupported(f"its tables would take {int(tables[-1]) * 8 / 2**20:.0f} MiB")
        kernels = _kernels()
        leaf_value = np.asarray(nodes.leaf_value, dtype=np.float32)
        feature_start = np.asarray(nodes.feature_start, dtype=np.int64)
        cover_ratio = np.asarray(nodes.cover_ratio, dtype=np.float64)
        table = np.zeros(int(tables[-1]), dtype=np.float64)
        expected = kernels.tables(leaf_value, feature_start, cover_ratio, tables, _shapley_weights(), table)
        return cls(
            n_columns=n_columns,
            base_margin=base_margin,
            expected_value=float(base_margin) + float(expected),
            tree_start=np.asarray(nodes.tree_start, dtype=np.int32),
            feature=np.asarray(nodes.feature, dtype=np.int32),
            threshold=np.asarray(nodes.threshold, dtype=np.float32),
            left=np.asarray(nodes.left, dtype=np.int32),
            right=np.asarray(nodes.right, dtype=np.int32),
            default_left=np.asarray(nodes.default_left, dtype=np.bool_),
            bit=np.asarray(nodes.bit, dtype=np.int32),
            leaf=np.asarray(nodes.leaf, dtype=np.int32),
            leaf_value=leaf_value,
            feature_start=feature_start,
            features=np.asarray(nodes.features, dtype=np.int32),
            table_start=tables[:-1],
            table=table,
        )

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (the tables are nearly all of it)."""
        return sum(value.nbytes for value in vars(self).values() if isinstance(value, np.ndarray))

    def explain(
        self, matrix: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """Margins (float32, as XGBoost sums them) and contributions per encoded column plus the bias column
        last, as `booster.predict(..., pred_contribs=True)` lays them out; NaN is a missing value."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_columns:
            raise ValueError(f"expected a (rows, {self.n_columns}) matrix, got {matrix.shape}")
        margins = np.empty(len(matrix), dtype=np.float32)
        contributions = np.zeros((len(matrix), self.n_columns + 1), dtype=np.float64)
        _kernels().explain(
            matrix,
            self.tree_start,
            self.feature,
            self.threshold,
            self.left,
            self.right,
            self.default_left,
            self.bit,
            self.leaf,
            self.leaf_value,
            self.feature_start,
            self.features,
            self.table_start,
            self.table,
            self.base_margin,
            self.expected_value,
            margins,
            contributions,
        )
        return margins, contributions

    @staticmethod
    def probabilities(margins: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """binary:logistic's transform, in float32 as XGBoost computes it."""
        out = np.empty_like(margins)
        _kernels().sigmoid(margins, out)
        return out


class _Nodes:
    """Trees flattened while they are read; the leaves' paths collected for the tables."""

    def __init__(self) -> None:
        self.tree_start = [0]
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.default_left: list[bool] = []
        self.bit: list[int] = []
        self.leaf: list[int] = []
        self.leaf_value: list[float] = []
        self.feature_start = [0]
        self.features: list[int] = []
        self.cover_ratio: list[float] = []  # z per path feature, beside `features`

    def add_tree(self, tree: dict[str, Any]) -> None:
        if any(int(kind) != 0 for kind in tree.get("split_type", [])) or tree.get("categories"):
            raise Unsupported("it has categorical splits")
        self._tree = tree
        self._start = len(self.feature)
        self._visit(0, (), ())
        self.tree_start.append(len(self.feature))

    def _visit(self, node: int, path: tuple[int, ...], ratios: tuple[float, ...]) -> int:
        """Append `node` and its subtree depth-first; returns its index within the tree."""
        tree = self._tree
        index = len(self.feature) - self._start
        left, right = int(tree["left_children"][node]), int(tree["right_children"][node])
        self.threshold.append(float(tree["split_conditions"][node]))
        self.default_left.append(bool(int(tree["default_left"][node])))
        self.left.append(-1)
        self.right.append(-1)
        if left == -1:
            self.feature.append(-1)
            self.bit.append(0)
            self.leaf.append(len(self.leaf_value))
            self.leaf_value.append(float(tree["split_conditions"][node]))  # a leaf's value is stored there
            self.features.extend(path)
            self.cover_ratio.extend(ratios)
            self.feature_start.append(len(self.features))
            return index
        feature = int(tree["split_indices"][node])
        bit = path.index(feature) if feature in path else len(path)
        if bit == len(path):
            if bit == MAX_PATH_FEATURES:
                raise Unsupported(f"a path splits on more than {MAX_PATH_FEATURES} features")
            path, ratios = (*path, feature), (*ratios, 1.0)
        self.feature.append(feature)
        self.bit.append(bit)
        self.leaf.append(-1)
        cover = float(tree["sum_hessian"][node])
        for child, side in ((left, self.left), (right, self.right)):
            scaled = list(ratios)
            scaled[bit] *= float(tree["sum_hessian"][child]) / cover
            side[self._start + index] = self._visit(child, path, tuple(scaled))
        return index

    def table_sizes(self) -> npt.NDArray[np.int64]:
        """Where each leaf's table starts, and the total last."""
        depths = np.diff(np.asarray(self.feature_start, dtype=np.int64))
        return np.concatenate([[0], np.cumsum((2**depths) * depths)]).astype(np.int64)


def _require_supported(learner: dict[str, Any]) -> None:
    params = learner["learner_model_param"]
    problems = []
    if learner["objective"]["name"] != "binary:logistic":
        problems.append(f"objective {learner['objective']['name']}")
    if learner["gradient_booster"]["name"] != "gbtree":
        problems.append(f"booster {learner['gradient_booster']['name']}")
    if params.get("num_target", "1") != "1" or params.get("num_class", "0") not in ("0", "1"):
        problems.append("more than one output")
    if problems:
        raise Unsupported(", ".join(problems))


def _logit32(probability: float) -> np.float32:
    """binary:logistic's ProbToMargin, in float32 as XGBoost computes the base margin."""
    p = np.float32(probability)
    return np.float32(-math.log(float(np.float32(np.float32(1) / p - np.float32(1)))))


def _shapley_weights() -> npt.NDArray[np.float64]:
    """weights[d, s] = s! (d - s - 1)! / d!: the Shapley weight of a coalition of s of a leaf's other features."""
    weights = np.zeros((MAX_PATH_FEATURES + 1, MAX_PATH_FEATURES), dtype=np.float64)
    for d in range(1, MAX_PATH_FEATURES + 1):
        for s in range(d):
            weights[d, s] = math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d)
    return weights


def _explain_kernel(
    x: Any,
    tree_start: Any,
    feature: Any,
    threshold: Any,
    left: Any,
    right: Any,
    default_left: Any,
    bit: Any,
    leaf: Any,
    leaf_value: Any,
    feature_start: Any,
    features: Any,
    table_start: Any,
    table: Any,
    base_margin: Any,
    expected_value: Any,
    margins: Any,
    out: Any,
) -> None:  # pragma: no cover - compiled by numba
    n_trees = tree_start.shape[0] - 1
    widest = 0
    for t in range(n_trees):
        widest = max(widest, tree_start[t + 1] - tree_start[t])
    bits = np.empty(widest, dtype=np.int64)
    n_columns = x.shape[1]
    for row in range(x.shape[0]):
        margin = base_margin
        for t in range(n_trees):
            start = tree_start[t]
            bits[0] = -1  # every bit set: at the root, the row agrees with every split so far
            for i in range(tree_start[t + 1] - start):
                node = start + i
                here = bits[i]
                f = feature[node]
                if f >= 0:
                    value = x[row, f]
                    go_left = default_left[node] if np.isnan(value) else value < threshold[node]
                    off = here & ~(np.int64(1) << bit[node])
                    bits[left[node]] = here if go_left else off
                    bits[right[node]] = off if go_left else here
                else:
                    lf = leaf[node]
                    first = feature_start[lf]
                    d = feature_start[lf + 1] - first
                    full = (np.int64(1) << d) - 1
                    pattern = here & full
                    if pattern == full:
                        margin += leaf_value[lf]
                    base = table_start[lf] + pattern * d
                    for k in range(d):
                        out[row, features[first + k]] += table[base + k]
        margins[row] = margin
        out[row, n_columns] = expected_value


def _sigmoid_kernel(margins: Any, out: Any) -> None:  # pragma: no cover - compiled by numba
    # XGBoost's common::Sigmoid(float): expf from the C library, as XGBoost calls it (numpy's own float32
    # exp differs in the last bit for about a row in four).
    one = np.float32(1.0)
    for i in range(margins.shape[0]):
        x = min(-margins[i], np.float32(88.7))
        out[i] = one / (np.float32(math.exp(x)) + one)


def _tables_kernel(
    leaf_value: Any, feature_start: Any, cover_ratio: Any, table_start: Any, weights: Any, table: Any
) -> float:  # pragma: no cover - compiled by numba
    expected = 0.0
    poly = np.zeros(weights.shape[1] + 1, dtype=np.float64)
    for lf in range(leaf_value.shape[0]):
        first = feature_start[lf]
        d = feature_start[lf + 1] - first
        v = np.float64(leaf_value[lf])
        reach = 1.0
        for k in range(d):
            reach *= cover_ratio[first + k]
        expected += v * reach
        for pattern in range(1 << d):
            for k in range(d):
                # the coefficients of prod_{j != k} (z_j + o_j t): poly[s] sums the coalitions of size s
                poly[0] = 1.0
                degree = 0
                for j in range(d):
                    if j == k:
                        continue
                    z = cover_ratio[first + j]
                    o = np.float64((pattern >> j) & 1)
                    poly[degree + 1] = 0.0
                    for s in range(degree + 1, 0, -1):
                        poly[s] = poly[s] * z + poly[s - 1] * o
                    poly[0] *= z
                    degree += 1
                total = 0.0
                for s in range(d):
                    total += weights[d, s] * poly[s]
                o_k = np.float64((pattern >> k) & 1)
                table[table_start[lf] + pattern * d + k] = v * (o_k - cover_ratio[first + k]) * total
    return expected


@cache
def _kernels() -> _Kernels:
    """The kernels compiled by numba, once per process (at the first version loaded, never at import).

    numba caches the machine code beside this file (__pycache__), else in NUMBA_CACHE_DIR or the user's cache
    directory; on a read-only install with none of them writable, it compiles without a cache (about a
    second per process)."""
    import numba

    def compile_(function: Any) -> Any:
        try:
            return numba.njit(cache=True, nogil=True)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            log.warning("numba has no writable cache directory; compiling %s without one", function.__name__)
            return numba.njit(cache=False, nogil=True)(function)

    return _Kernels(
        explain=compile_(_explain_kernel), sigmoid=compile_(_sigmoid_kernel), tables=compile_(_tables_kernel)
    )
