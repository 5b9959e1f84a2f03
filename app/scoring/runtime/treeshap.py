"""Exact TreeSHAP for a served XGBoost booster, with its margins and probabilities from the same pass.

The values are XGBoost's own exact contributions (`pred_contribs=True, approx_contribs=False`): path-dependent
TreeSHAP, which weighs the branches not taken by their training cover (Lundberg et al. 2020, "From local
explanations to global understanding with explainable AI for trees", Nature Machine Intelligence 2:56-67,
Algorithm 2). They are computed the way of Fast TreeSHAP v2 (Yang 2021, "Fast TreeSHAP: Accelerating SHAP
value computation for trees", arXiv:2109.09847, section 3.2): what a leaf adds to each Shapley value depends on
the row only through a few bits, so it is tabled once per loaded version and a row costs table look-ups.

For a leaf with value v and the distinct features F (|F| = d) split on along its path: z_j is the product of
the cover ratios (child cover / parent cover) of the path's splits on feature j, and o_j(x) is 1 when row x
takes the path's branch at every split on j (a missing value takes the node's default branch). The tree's
expectation given the features in S is the sum over leaves of v * prod_{j in F} (o_j if j in S else z_j), so
the leaf adds to feature i in F

    phi_i = v * (o_i - z_i) * sum_{S subset of F - {i}} |S|! (d - |S| - 1)! / d!
                                  * prod_{j in S} o_j * prod_{j in F - S - {i}} z_j

which depends on x only through the d bits o: a table of 2^d x d values per leaf (the subset sum is read off
the coefficients of prod_{j != i} (z_j + o_j t)). The bias is the sum of v * prod_j z_j, as XGBoost's.

One step further than the paper, to look up less per row: the leaves under a small subtree (a "block") are
tabled together, indexed by the bits of the features above the block and the branch the row takes at each of
the block's splits (at most BLOCK_BITS bits in all). A row walks the splits above the blocks one by one (a
split clears its feature's bit on the branch the row does not take), reads the branches of each block's splits
and adds one table row per block: for trees 3 deep, two look-ups per tree instead of eight. The table also holds
the value of the leaf the row reaches, added to the margin in float32 in tree order from the base margin as
XGBoost sums it; with XGBoost's own sigmoid (common::Sigmoid) the probabilities are booster.predict's, bit for
bit. Contributions are summed in float64 (XGBoost sums in float32): they agree within 1e-5 on every holdout row
of every served model (tests/test_treeshap.py).

Only what the served models use is handled: binary:logistic gbtree boosters with numeric splits; anything else
raises Unsupported and the scorer keeps XGBoost's own path. numba compiles the kernels at the first version
loaded in a process (cached on disk where a cache directory is writable; see `_kernels`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import xgboost as xgb

log = logging.getLogger(__name__)

# Distinct features on one path: a leaf's table holds 2^d x d values. The served trees are 3-4 deep.
MAX_PATH_FEATURES = 12
# A block's table has 2^bits rows (bits: the features above it and its splits). 6 cuts a tree 3 deep into two
# blocks under its root and a tree 4 deep into four under its top two levels; measured on the served models, as
# fast as 7 or 8 (one block for a tree 3 deep) with a third of the memory, and 1.5-2x faster than 4.
BLOCK_BITS = 6
# All of a booster's tables together; beyond this (very deep or very many trees) XGBoost's path is kept.
MAX_TABLE_BYTES = 64 * 1024 * 1024

Int32s = npt.NDArray[np.int32]
UInt64s = npt.NDArray[np.uint64]


class Unsupported(ValueError):
    """This booster is not one the tables handle; XGBoost's own path explains it."""


class _Kernels(NamedTuple):
    explain: Any
    sigmoid: Any
    leaf_tables: Any
    block_tables: Any


@dataclass(frozen=True)
class TreeShap:
    """One booster's trees, flattened tree after tree in depth-first order, and its blocks' tables."""

    n_columns: int
    base_margin: np.float32
    expected_value: float  # XGBoost's bias column: the base margin plus each tree's cover-weighted mean
    # per tree: the splits above its blocks, walked one by one (walk_*[walk_start[t]:walk_start[t + 1]]), and its
    # blocks (block_start[t]:block_start[t + 1]); nodes are numbered depth-first within their tree
    walk_start: UInt64s
    walk_node: UInt64s
    walk_left: UInt64s
    walk_right: UInt64s
    walk_bit: UInt64s  # the bit of the split's feature among the distinct features of its path
    walk_feature: UInt64s
    walk_threshold: npt.NDArray[np.float32]
    walk_default_left: npt.NDArray[np.bool_]
    block_start: UInt64s
    # per block: its root, how many bits come from above, its splits (split_*[split_start[b]:split_start[b + 1]],
    # depth-first), the columns its table adds to, where its table and its reached leaves' values start
    block_root: UInt64s
    block_in_bits: UInt64s
    split_start: UInt64s
    split_feature: UInt64s
    split_threshold: npt.NDArray[np.float32]
    split_default_left: npt.NDArray[np.bool_]
    unit_start: UInt64s
    units: UInt64s
    table_start: UInt64s
    table: npt.NDArray[np.float64]
    reach_start: UInt64s
    reach: npt.NDArray[np.float32]
    build_seconds: float = field(default=0.0, compare=False)

    @classmethod
    def of(cls, booster: xgb.Booster) -> TreeShap:
        """Read the booster's trees (its JSON model, doc/model.schema in XGBoost) and build the tables."""
        started = time.perf_counter()
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        require_supported(learner)
        params = learner["learner_model_param"]
        base_margin = logit32(float(params["base_score"].strip("[]")))
        forest = _Forest()
        for tree in learner["gradient_booster"]["model"]["trees"]:
            forest.add_tree(tree)
        kernels = _kernels()
        nodes = forest.node_arrays()
        leaves = forest.leaf_arrays()
        _require_room(int(leaves["table_start"][-1]))
        leaf_table = np.zeros(int(leaves["table_start"][-1]), dtype=np.float64)
        expected = kernels.leaf_tables(
            leaves["value"],
            leaves["feature_start"],
            leaves["cover_ratio"],
            leaves["table_start"],
            _shapley_weights(),
            leaf_table,
        )
        blocks = forest.block_arrays()
        _require_room(int(blocks["table_start"][-1]))
        table = np.zeros(int(blocks["table_start"][-1]), dtype=np.float64)
        reach = np.zeros(int(blocks["reach_start"][-1]), dtype=np.float32)
        kernels.block_tables(
            blocks["tree_offset"],
            blocks["root"],
            blocks["size"],
            blocks["in_bits"],
            blocks["split_start"],
            blocks["unit_start"],
            blocks["units"],
            blocks["table_start"],
            blocks["reach_start"],
            nodes["left"],
            nodes["right"],
            nodes["bit"],
            nodes["leaf"],
            leaves["value"],
            leaves["feature_start"],
            leaves["features"],
            leaves["table_start"],
            leaf_table,
            table,
            reach,
        )
        walk = np.asarray(forest.walk, dtype=np.int64)
        tree_of_walk = np.repeat(np.arange(len(forest.walk_start) - 1), np.diff(forest.walk_start))
        walk_local = walk - np.asarray(forest.tree_start, dtype=np.int64)[tree_of_walk]
        splits = blocks["splits"]
        threshold = np.asarray(forest.threshold, dtype=np.float32)
        default_left = np.asarray(forest.default_left, dtype=np.bool_)
        return cls(
            n_columns=int(params["num_feature"]),
            base_margin=base_margin,
            expected_value=float(base_margin) + float(expected),
            walk_start=_unsigned(forest.walk_start),
            walk_node=_unsigned(walk_local),
            walk_left=_unsigned(nodes["left"][walk]),
            walk_right=_unsigned(nodes["right"][walk]),
            walk_bit=_unsigned(nodes["bit"][walk]),
            walk_feature=_unsigned(nodes["feature"][walk]),
            walk_threshold=threshold[walk],
            walk_default_left=default_left[walk],
            block_start=_unsigned(forest.block_start),
            block_root=_unsigned(blocks["root"]),
            block_in_bits=_unsigned(blocks["in_bits"]),
            split_start=_unsigned(blocks["split_start"]),
            split_feature=_unsigned(nodes["feature"][splits]),
            split_threshold=threshold[splits],
            split_default_left=default_left[splits],
            unit_start=_unsigned(blocks["unit_start"]),
            units=_unsigned(blocks["units"]),
            table_start=_unsigned(blocks["table_start"]),
            table=table,
            reach_start=_unsigned(blocks["reach_start"]),
            reach=reach,
            build_seconds=time.perf_counter() - started,
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
            self.walk_start,
            self.walk_node,
            self.walk_left,
            self.walk_right,
            self.walk_bit,
            self.walk_feature,
            self.walk_threshold,
            self.walk_default_left,
            self.block_start,
            self.block_root,
            self.block_in_bits,
            self.split_start,
            self.split_feature,
            self.split_threshold,
            self.split_default_left,
            self.unit_start,
            self.units,
            self.table_start,
            self.table,
            self.reach_start,
            self.reach,
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


class _Forest:
    """Trees flattened depth-first while they are read, with each leaf's path and each tree's blocks."""

    def __init__(self) -> None:
        self.tree_start = [0]
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.default_left: list[bool] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.bit: list[int] = []
        self.leaf: list[int] = []
        self.above: list[tuple[int, ...]] = []  # the distinct features split on above the node, in path order
        self.size: list[int] = []  # nodes in the node's subtree
        self.n_splits: list[int] = []  # splits in the node's subtree
        self.leaf_value: list[float] = []
        self.leaf_features: list[tuple[int, ...]] = []
        self.leaf_ratios: list[tuple[float, ...]] = []
        self.walk_start = [0]
        self.walk: list[int] = []
        self.block_start = [0]
        self.blocks: list[tuple[int, int]] = []  # (tree start, root node)

    def add_tree(self, tree: dict[str, Any]) -> None:
        if any(int(kind) != 0 for kind in tree.get("split_type", [])) or tree.get("categories"):
            raise Unsupported("it has categorical splits")
        start = len(self.feature)
        self._visit(tree, start, 0, (), ())
        self._cut(start, start)
        self.tree_start.append(len(self.feature))
        self.walk_start.append(len(self.walk))
        self.block_start.append(len(self.blocks))

    def _visit(
        self, tree: dict[str, Any], start: int, node: int, path: tuple[int, ...], ratios: tuple[float, ...]
    ) -> int:
        """Append `node` and its subtree depth-first; returns its index within the tree."""
        here = len(self.feature)
        left, right = int(tree["left_children"][node]), int(tree["right_children"][node])
        self.threshold.append(float(tree["split_conditions"][node]))
        self.default_left.append(bool(int(tree["default_left"][node])))
        self.left.append(-1)
        self.right.append(-1)
        self.above.append(path)
        self.size.append(1)
        self.n_splits.append(0)
        if left == -1:
            self.feature.append(-1)
            self.bit.append(0)
            self.leaf.append(len(self.leaf_value))
            self.leaf_value.append(float(tree["split_conditions"][node]))  # a leaf's value is stored there
            self.leaf_features.append(path)
            self.leaf_ratios.append(ratios)
            return here - start
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
            side[here] = self._visit(tree, start, child, path, tuple(scaled))
        self.size[here] = len(self.feature) - here
        self.n_splits[here] = (
            1 + self.n_splits[start + self.left[here]] + self.n_splits[start + self.right[here]]
        )
        return here - start

    def _cut(self, start: int, node: int) -> None:
        """Make `node` a block when its table is small enough, else walk it and cut its children."""
        if self.feature[node] < 0 or len(self.above[node]) + self.n_splits[node] <= BLOCK_BITS:
            self.blocks.append((start, node))
            return
        self.walk.append(node)
        self._cut(start, start + self.left[node])
        self._cut(start, start + self.right[node])

    def node_arrays(self) -> dict[str, Int32s]:
        return {
            name: np.asarray(getattr(self, name), dtype=np.int32)
            for name in ("feature", "left", "right", "bit", "leaf")
        }

    def leaf_arrays(self) -> dict[str, Any]:
        depths = np.asarray([len(features) for features in self.leaf_features], dtype=np.int64)
        return {
            "value": np.asarray(self.leaf_value, dtype=np.float32),
            "feature_start": np.concatenate([[0], np.cumsum(depths)]).astype(np.int64),
            "features": np.asarray([f for fs in self.leaf_features for f in fs], dtype=np.int32),
            "cover_ratio": np.asarray([z for zs in self.leaf_ratios for z in zs], dtype=np.float64),
            "table_start": np.concatenate([[0], np.cumsum((2**depths) * depths)]).astype(np.int64),
        }

    def block_arrays(self) -> dict[str, Any]:
        tree_offset, root, size, in_bits, splits, units = [], [], [], [], [], []
        split_start, unit_start, table_start, reach_start = [0], [0], [0], [0]
        for start, node in self.blocks:
            inside = range(node, node + self.size[node])
            block_splits = [n for n in inside if self.feature[n] >= 0]
            block_units = list(self.above[node])
            for n in block_splits:
                if self.feature[n] not in block_units:
                    block_units.append(self.feature[n])
            rows = 2 ** (len(self.above[node]) + len(block_splits))
            tree_offset.append(start)
            root.append(node - start)
            size.append(self.size[node])
            in_bits.append(len(self.above[node]))
            splits.extend(block_splits)
            units.extend(block_units)
            split_start.append(len(splits))
            unit_start.append(len(units))
            table_start.append(table_start[-1] + rows * len(block_units))
            reach_start.append(reach_start[-1] + rows)
        ints = {"tree_offset": tree_offset, "root": root, "size": size, "in_bits": in_bits}
        ints |= {"splits": splits, "units": units}
        longs = {
            "split_start": split_start,
            "unit_start": unit_start,
            "table_start": table_start,
            "reach_start": reach_start,
        }
        return {k: np.asarray(v, dtype=np.int32) for k, v in ints.items()} | {
            k: np.asarray(v, dtype=np.int64) for k, v in longs.items()
        }


def _require_room(values: int) -> None:
    if values * 8 > MAX_TABLE_BYTES:
        raise Unsupported(f"its tables would take {values * 8 / 2**20:.0f} MiB")


def _unsigned(values: Any) -> UInt64s:
    return np.asarray(values, dtype=np.uint64)


def require_supported(learner: dict[str, Any]) -> None:
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


def logit32(probability: float) -> np.float32:
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
    walk_start: Any,
    walk_node: Any,
    walk_left: Any,
    walk_right: Any,
    walk_bit: Any,
    walk_feature: Any,
    walk_threshold: Any,
    walk_default_left: Any,
    block_start: Any,
    block_root: Any,
    block_in_bits: Any,
    split_start: Any,
    split_feature: Any,
    split_threshold: Any,
    split_default_left: Any,
    unit_start: Any,
    units: Any,
    table_start: Any,
    table: Any,
    reach_start: Any,
    reach: Any,
    base_margin: Any,
    expected_value: Any,
    margins: Any,
    out: Any,
) -> None:  # pragma: no cover - compiled by numba
    # Every index is unsigned (the arrays are uint64): numba then skips its negative-index handling on each
    # access, which made this loop 1.7x slower. No branch depends on the data either: a mispredicted branch
    # costs more than the arithmetic that replaces it.
    n_trees = walk_start.shape[0] - 1
    widest = np.uint64(1)
    for b in range(block_root.shape[0]):
        widest = max(widest, block_root[b] + np.uint64(1))
    bits = np.empty(widest, dtype=np.int64)
    n_columns = x.shape[1]
    one = np.int64(1)
    for row in range(x.shape[0]):
        r = np.uint64(row)
        margin = base_margin
        phi = out[r]
        for t in range(n_trees):
            bits[0] = -1  # every bit set: at the root, the row agrees with every split so far
            for w in range(walk_start[t], walk_start[t + 1]):
                value = x[r, walk_feature[w]]
                go_left = (value < walk_threshold[w]) | ((value != value) & walk_default_left[w])
                here = bits[walk_node[w]]
                mine = here & (one << np.int64(walk_bit[w]))
                taken = -np.int64(go_left)  # all ones when the row goes left
                bits[walk_left[w]] = (here ^ mine) | (mine & taken)
                bits[walk_right[w]] = (here ^ mine) | (mine & ~taken)
            for b in range(block_start[t], block_start[t + 1]):
                shift = block_in_bits[b]
                index = np.uint64(bits[block_root[b]]) & ((np.uint64(1) << shift) - np.uint64(1))
                for s in range(split_start[b], split_start[b + 1]):
                    value = x[r, split_feature[s]]
                    go_left = (value < split_threshold[s]) | ((value != value) & split_default_left[s])
                    index |= np.uint64(go_left) << shift
                    shift += np.uint64(1)
                margin += reach[reach_start[b] + index]
                first = unit_start[b]
                n_units = unit_start[b + np.uint64(1)] - first
                base = table_start[b] + index * n_units
                for u in range(n_units):
                    phi[units[first + u]] += table[base + u]
        margins[r] = margin
        phi[n_columns] = expected_value


def _sigmoid_kernel(margins: Any, out: Any) -> None:  # pragma: no cover - compiled by numba
    # XGBoost's common::Sigmoid(float): expf from the C library, as XGBoost calls it (numpy's own float32
    # exp differs in the last bit for about a row in four).
    one = np.float32(1.0)
    for i in range(margins.shape[0]):
        x = min(-margins[i], np.float32(88.7))
        out[i] = one / (np.float32(math.exp(x)) + one)


def _leaf_tables_kernel(
    leaf_value: Any, feature_start: Any, cover_ratio: Any, table_start: Any, weights: Any, table: Any
) -> float:  # pragma: no cover - compiled by numba
    """Each leaf's table (see the module's docstring); returns the sum of the trees' expectations."""
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


def _block_tables_kernel(
    tree_offset: Any,
    block_root: Any,
    block_size: Any,
    block_in_bits: Any,
    split_start: Any,
    unit_start: Any,
    units: Any,
    table_start: Any,
    reach_start: Any,
    left: Any,
    right: Any,
    bit: Any,
    leaf: Any,
    leaf_value: Any,
    feature_start: Any,
    features: Any,
    leaf_table_start: Any,
    leaf_table: Any,
    table: Any,
    reach: Any,
) -> None:  # pragma: no cover - compiled by numba
    """Each block's table: for every index (the bits from above, then a bit per split: 1 = the row goes left),
    the sum of its leaves' table rows and the value of the leaf reached (0 when none is)."""
    widest = 1
    for b in range(block_root.shape[0]):
        widest = max(widest, block_size[b])
    bits = np.empty(widest, dtype=np.int64)
    for b in range(block_root.shape[0]):
        root = tree_offset[b] + block_root[b]
        in_bits = block_in_bits[b]
        n_splits = split_start[b + 1] - split_start[b]
        first_unit = unit_start[b]
        n_units = unit_start[b + 1] - first_unit
        for index in range(np.int64(1) << (in_bits + n_splits)):
            bits[0] = index | ~((np.int64(1) << in_bits) - 1)
            split = 0
            for i in range(block_size[b]):
                node = root + i
                here = bits[i]
                if leaf[node] < 0:
                    go_left = (index >> (in_bits + split)) & 1
                    split += 1
                    off = here & ~(np.int64(1) << bit[node])
                    bits[left[node] - block_root[b]] = here if go_left else off
                    bits[right[node] - block_root[b]] = off if go_left else here
                    continue
                lf = leaf[node]
                first = feature_start[lf]
                d = feature_start[lf + 1] - first
                full = (np.int64(1) << d) - 1
                pattern = here & full
                if pattern == full:
                    reach[reach_start[b] + index] = leaf_value[lf]
                row = leaf_table_start[lf] + pattern * d
                for k in range(d):
                    unit = 0
                    while units[first_unit + unit] != features[first + k]:
                        unit += 1
                    table[table_start[b] + index * n_units + unit] += leaf_table[row + k]


@cache
def _kernels() -> _Kernels:
    """The kernels compiled by numba, once per process (at the first version loaded, never at import)."""
    kernels = (_explain_kernel, _sigmoid_kernel, _leaf_tables_kernel, _block_tables_kernel)
    return _Kernels(*(numba_jit(kernel) for kernel in kernels))


def numba_jit(kernel: Any) -> Any:
    """`kernel` compiled by numba, releasing the GIL while it runs.

    numba caches the machine code beside the kernel's file (__pycache__), else in NUMBA_CACHE_DIR or the user's
    cache directory; on a read-only install with none of them writable, it compiles without a cache (2-5 s
    per process on this machine)."""
    import numba

    try:
        return numba.njit(cache=True, nogil=True)(kernel)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available for file ..."
        log.warning(
            "numba cannot cache its machine code here (%s): compiling without a cache; set NUMBA_CACHE_DIR",
            exc,
        )
        return numba.njit(cache=False, nogil=True)(kernel)
