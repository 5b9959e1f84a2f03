"""A scorer: one loaded model version, turning API records into probabilities and per-field reasons."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from app import metrics
from app.errors import InvalidRecords
from app.scoring.runtime.treeshap import TreeShap, Unsupported
from app.scoring.runtime.treewalk import MAX_WALK_ROWS, TreeWalk
from app.text import text_problem
from model_registry.bundle import ModelBundle
from model_registry.catalogue import ProductCatalogue
from model_registry.contract import FieldError
from model_registry.stacking import stack_boosters
from model_registry.value import check_example as check_value_example

MAX_FACTORS = 5
IMPACT_DIGITS = 6
FEW_RECORDS = 16  # up to this many, reasons are built row by row (see Scorer._factors)
# How far the TreeSHAP tables may stray from XGBoost's exact path (which sums in float32) before it replaces them.
CONTRIBUTION_TOLERANCE = 1e-5
PROBABILITY_TOLERANCE = 1e-6

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Scorer:
    name: str
    version: int
    alias: str
    loaded_at: datetime
    bundle: ModelBundle
    exact_contributions: bool = False
    _blocks: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] = field(init=False, repr=False)
    # Every booster of a multi-booster version (the products) in one, so one call scores them all.
    _stacked: xgb.Booster | None = field(init=False, repr=False)
    # Probabilities of small batches walked in a compiled loop, by booster (app/scoring/runtime/treewalk.py):
    # XGBoost's predictor costs 0.1-0.5 ms per call and booster before it scores a row. A booster without a walk
    # keeps XGBoost's.
    _walks: dict[str, TreeWalk] = field(init=False, repr=False)
    # Exact reasons, with the probabilities from the same pass, by booster (app/scoring/runtime/treeshap.py);
    # a booster the tables do not handle keeps XGBoost's own exact path. Empty with the approximation.
    _treeshap: dict[str, TreeShap] = field(init=False, repr=False)
    _names: tuple[str, ...] = field(init=False, repr=False)  # the contract's features, as reasons name them

    def __post_init__(self) -> None:
        boosters = self.bundle.boosters
        self._stacked = stack_boosters(boosters) if len(boosters) > 1 else None
        contract = self.bundle.contract
        # Features with no encoded column (every category rare) never contribute; reduceat needs them gone.
        features = [i for i, f in enumerate(contract.features) if f.width > 0]
        offsets = [contract.column_offsets[i] for i in features]
        self._blocks = (np.asarray(features, dtype=np.intp), np.asarray(offsets, dtype=np.intp))
        self._names = tuple(feature.name for feature in contract.features)
        self._treeshap = self._build_treeshap() if self.exact_contributions else {}
        self._walks = self._build_walks()

    def _build_walks(self) -> dict[str, TreeWalk]:
        return self._per_booster(TreeWalk.of, "probabilities from XGBoost's predictor", logging.INFO)

    def _build_treeshap(self) -> dict[str, TreeShap]:
        """Once per loaded version: each booster's tables (tens of milliseconds and 1-2 MiB a booster here)."""
        built = self._per_booster(
            TreeShap.of, "reasons from XGBoost's exact TreeSHAP, several times slower", logging.WARNING
        )
        if built:
            log.info(
                "%s v%d: TreeSHAP tables for %d booster(s) built in %.0f ms, %.1f MiB",
                self.name,
                self.version,
                len(built),
                sum(t.build_seconds for t in built.values()) * 1000,
                sum(t.nbytes for t in built.values()) / 2**20,
                extra={"model": self.name, "version": self.version},
            )
        return built

    @property
    def ref(self) -> dict[str, Any]:
        """The exact registered version that scores, as every scoring response names it."""
        return {"name": self.name, "version": self.version, "alias": self.alias}

    @property
    def metadata(self) -> dict[str, Any]:
        return self.bundle.metadata

    @functools.cached_property
    def catalogue(self) -> ProductCatalogue:
        """A products version's catalogue, read from its metadata once per loaded version (its routes, the
        profile and the file scoring used to parse it again on every request, ~13 us each)."""
        return ProductCatalogue.from_metadata(self.metadata)

    @property
    def id_field(self) -> str:
        return self.bundle.contract.id_field

    def encode(self, records: list[dict[str, Any]], path_prefix: str) -> npt.NDArray[np.float32]:
        matrix, errors = self.bundle.contract.encode(records, path_prefix)
        errors += field_errors_for_ids(records, self.id_field, path_prefix)
        if errors:
            raise InvalidRecords.from_field_errors(errors)
        return matrix

    def probabilities(
        self, matrix: npt.NDArray[np.float32], booster: str = "model"
    ) -> npt.NDArray[np.float64]:
        walk = self._walks.get(booster)
        if walk is not None and len(matrix) <= MAX_WALK_ROWS:
            return np.asarray(walk.probabilities(matrix), dtype=np.float64)
        return np.asarray(self.bundle.boosters[booster].inplace_predict(matrix), dtype=np.float64)

    def probabilities_by_booster(self, matrix: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float64]]:
        """Every booster's probabilities for the same rows: a small batch walked, else in one call of the stacked
        booster."""
        if self._stacked is None or (
            len(self._walks) == len(self.bundle.boosters) and len(matrix) <= MAX_WALK_ROWS
        ):
            return {key: self.probabilities(matrix, key) for key in self.bundle.boosters}
        stacked = self._stacked.predict(_dmatrix(matrix), validate_features=False).reshape(len(matrix), -1)
        return {
            key: np.asarray(stacked[:, column], dtype=np.float64)
            for column, key in enumerate(self.bundle.boosters)
        }

    def contributions(
        self, matrix: npt.NDArray[np.float32], booster: str = "model"
    ) -> npt.NDArray[np.float32]:
        """Per-field log-odds contributions (rows x contract features), one-hot blocks summed per field."""
        tables = self._treeshap.get(booster)
        if tables is not None:
            return self._per_field(tables.explain(matrix)[1])
        raw = self.bundle.boosters[booster].predict(
            _dmatrix(matrix),
            pred_contribs=True,
            approx_contribs=not self.exact_contributions,
            validate_features=False,
        )
        return self._per_field(raw)

    def _per_field(self, raw: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
        """Per-column contributions (the bias column last, as XGBoost lays them out) summed per API field."""
        features, offsets = self._blocks
        n_fields = len(self.bundle.contract.features)
        if len(features) == n_fields:  # every field has columns: no zeros to fill in
            return np.add.reduceat(raw[:, :-1], offsets, axis=1).astype(np.float32)
        per_field = np.zeros((raw.shape[0], n_fields), dtype=np.float32)
        if len(offsets):
            per_field[:, features] = np.add.reduceat(raw[:, :-1], offsets, axis=1)
        return per_field

    def top_factors(
        self, matrix: npt.NDArray[np.float32], records: list[dict[str, Any]], booster: str = "model"
    ) -> list[list[dict[str, Any]]]:
        """Up to five reasons per record, largest |impact| first, named by API field with the value seen."""
        return self._factors(self.contributions(matrix, booster), records)

    def _factors(
        self, per_field: npt.NDArray[np.float32], records: list[dict[str, Any]]
    ) -> list[list[dict[str, Any]]]:
        if len(records) <= FEW_RECORDS:
            return [
                self._reasons(record, impacts)
                for record, impacts in zip(records, per_field.tolist(), strict=True)
            ]
        # A batch: numpy sorts every row at once and rounds every impact at once; past that, Python lists only
        # (a numpy scalar or a round() per factor cost more than the reason itself on 1,000 records).
        order = np.argsort(-np.abs(per_field), axis=1, kind="stable")[:, :MAX_FACTORS]
        impacts = per_field[np.arange(len(per_field))[:, np.newaxis], order]  # take_along_axis: 15 us more
        rounded = round_half_even(impacts.astype(np.float64), IMPACT_DIGITS)
        kept = np.count_nonzero(impacts, axis=1).tolist()  # zeros sort last: fields that played no part
        names = self._names
        display = self.bundle.contract.display_values
        factors = []
        for record, count, fields, values in zip(records, kept, order.tolist(), rounded, strict=True):
            fields = fields[:count]
            factors.append(
                [
                    {"feature": names[index], "value": value, "impact": impact}
                    for index, value, impact in zip(fields, display(record, fields), values, strict=False)
                ]
            )
        return factors

    def _reasons(self, record: dict[str, Any], impacts: list[float]) -> list[dict[str, Any]]:
        """One record's reasons, in plain Python: for a few records, cheaper than the dozen numpy calls above."""
        order = sorted(range(len(impacts)), key=lambda index: -abs(impacts[index]))[:MAX_FACTORS]  # stable
        fields = [index for index in order if impacts[index] != 0.0]
        values = self.bundle.contract.display_values(record, fields)
        return [
            {"feature": self._names[index], "value": value, "impact": round(impacts[index], IMPACT_DIGITS)}
            for index, value in zip(fields, values, strict=True)
        ]

    def score(
        self, records: list[dict[str, Any]], path_prefix: str, explain: bool, booster: str = "model"
    ) -> tuple[npt.NDArray[np.float64], list[list[dict[str, Any]]] | None]:
        """Probabilities for a batch, and its reasons when asked for."""
        matrix = self.encode(records, path_prefix)
        metrics.SCORED_RECORDS.labels(self.name, str(self.version)).inc(len(records))
        if not explain:
            return self.probabilities(matrix, booster), None
        tables = self._treeshap.get(booster)
        if tables is not None:
            # One pass gives the reasons and the margins, and from them booster.predict's probabilities bit for
            # bit (tests/test_treeshap.py): no DMatrix, no XGBoost call.
            margins, raw = tables.explain(matrix)
            probabilities = np.asarray(tables.probabilities(margins), dtype=np.float64)
            return probabilities, self._factors(self._per_field(raw), records)
        data = _dmatrix(matrix)
        predicted = self.bundle.boosters[booster].predict(data, validate_features=False)
        raw = self.bundle.boosters[booster].predict(
            data, pred_contribs=True, approx_contribs=not self.exact_contributions, validate_features=False
        )
        return np.asarray(predicted, dtype=np.float64), self._factors(self._per_field(raw), records)

    def check(self) -> None:
        """Score the example stored at training and compare: a version that scores differently is refused.

        The walked probabilities and the TreeSHAP tables must first give, on it and on a record with every field
        missing, what XGBoost's own paths give; a booster whose walk or tables do not falls back to XGBoost's
        path, logged: slower, never wrong."""
        if (
            "value_model" in self.metadata
        ):  # no booster: parameters and a stored example (model_registry/value.py)
            check_value_example(self.metadata)
        example = self.metadata.get("check")
        matrix = self.encode(example["records"], "check") if example else None
        missing = np.full((1, self.bundle.contract.n_columns), np.nan, dtype=np.float32)
        rows = missing if matrix is None else np.vstack([matrix, missing])
        for key, walk in list(self._walks.items()):
            expected = self.bundle.boosters[key].predict(_dmatrix(rows), validate_features=False)
            if not np.array_equal(walk.probabilities(rows), expected):
                self._fall_back(key, "the walked probabilities differ from XGBoost's")
                del self._walks[key]
        for key, tables in list(self._treeshap.items()):
            problem = treeshap_disagreement(tables, self.bundle.boosters[key], rows)
            if problem:
                self._fall_back(key, f"the TreeSHAP tables disagree with XGBoost ({problem})")
                del self._treeshap[key]
        if example and matrix is not None:
            stacked = self.probabilities_by_booster(matrix)
            for booster, expected in example["probabilities"].items():
                for got in (self.probabilities(matrix, booster), stacked[booster]):
                    if not np.allclose(got, expected, atol=1e-5):
                        raise ValueError(f"{self.name} v{self.version} scores its stored example differently")

    def _fall_back(self, booster: str, problem: str) -> None:
        self._note(logging.ERROR, booster, f"{problem}; using XGBoost's path")

    def _per_booster(self, build: Callable[[xgb.Booster], T], fallback: str, level: int) -> dict[str, T]:
        """`build` for each booster: the service's own fast path for it. A booster it does not handle, or whose
        build fails (a bug here must not refuse a version XGBoost scores well enough), keeps XGBoost's path."""
        built = {}
        for key, booster in self.bundle.boosters.items():
            try:
                built[key] = build(booster)
            except Unsupported as exc:
                self._note(level, key, f"{fallback}: {exc}")
            except Exception:
                self._note(logging.ERROR, key, f"{fallback}: building the fast path failed", exc_info=True)
        return built

    def _note(self, level: int, booster: str, message: str, exc_info: bool = False) -> None:
        log.log(
            level,
            "%s v%d booster %r: %s",
            self.name,
            self.version,
            booster,
            message,
            exc_info=exc_info,
            extra={"model": self.name, "version": self.version},
        )


def treeshap_disagreement(
    tables: TreeShap, booster: xgb.Booster, matrix: npt.NDArray[np.float32]
) -> str | None:
    """How the tables' reasons or probabilities differ from XGBoost's exact ones on these rows, if they do."""
    margins, contributions = tables.explain(matrix)
    data = _dmatrix(matrix)
    reference = booster.predict(data, pred_contribs=True, approx_contribs=False, validate_features=False)
    worst = float(np.max(np.abs(contributions - reference)))
    if not worst <= CONTRIBUTION_TOLERANCE:  # NaN fails too
        return f"contributions differ by up to {worst:.2g}"
    expected = booster.predict(data, validate_features=False)
    worst = float(np.max(np.abs(tables.probabilities(margins) - expected)))
    if not worst <= PROBABILITY_TOLERANCE:
        return f"probabilities differ by up to {worst:.2g}"
    return None


def _dmatrix(matrix: npt.NDArray[np.float32]) -> xgb.DMatrix:
    # One thread: DMatrix defaults to every core, and waking that OpenMP team on each request costs
    # milliseconds of p99 on a busy machine (measured: profile p50 9-16 ms -> 3-4 ms in-process).
    return xgb.DMatrix(matrix, missing=np.nan, nthread=1)


def round_half_even(values: npt.NDArray[np.float64], digits: int) -> list[list[float]]:
    """`[[round(v, digits) for v in row] for row in values]`, computed for the whole array at once.

    round() picks the integer nearest the exact value times 10**digits (ties to even) and returns the double
    nearest that integer over 10**digits; numpy's rint and one IEEE division give the same double, except where
    the product, rounded, lands too near a half to tell: those few values go through round() itself."""
    scale = 10.0**digits
    scaled = values * scale
    out: list[list[float]] = (np.rint(scaled) / scale).tolist()
    for row, column in zip(*np.nonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6), strict=True):
        out[row][column] = round(float(values[row, column]), digits)
    return out


MAX_ID_LENGTH = 128  # the prediction log's record_id column: a longer id could not be logged


def field_errors_for_ids(records: list[dict[str, Any]], id_field: str, path_prefix: str) -> list[FieldError]:
    """IDs, when present, must be integers or printable-safe strings: they are echoed back and used as keys."""
    errors = []
    for row, record in enumerate(records):
        problem = id_problem(record.get(id_field))
        if problem:
            errors.append(FieldError(f"{path_prefix}[{row}].{id_field}", problem))
    return errors


def id_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    if not isinstance(value, str):
        return "must be a string or an integer"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters"
    return text_problem(value)  # NUL, lone surrogates: no database holds them
