"""A scorer: one loaded model version, turning API records into probabilities and per-field reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from app import metrics
from app.errors import InvalidRecords
from app.text import text_problem
from model_registry.bundle import ModelBundle
from model_registry.contract import FieldError
from model_registry.stacking import stack_boosters

MAX_FACTORS = 5


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

    def __post_init__(self) -> None:
        boosters = self.bundle.boosters
        self._stacked = stack_boosters(boosters) if len(boosters) > 1 else None
        contract = self.bundle.contract
        # Features with no encoded column (every category rare) never contribute; reduceat needs them gone.
        features = [i for i, f in enumerate(contract.features) if f.width > 0]
        offsets = [contract.column_offsets[i] for i in features]
        self._blocks = (np.asarray(features, dtype=np.intp), np.asarray(offsets, dtype=np.intp))

    @property
    def ref(self) -> dict[str, Any]:
        """The exact registered version that scores, as every scoring response names it."""
        return {"name": self.name, "version": self.version, "alias": self.alias}

    @property
    def metadata(self) -> dict[str, Any]:
        return self.bundle.metadata

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
        return np.asarray(self.bundle.boosters[booster].inplace_predict(matrix), dtype=np.float64)

    def probabilities_by_booster(self, matrix: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float64]]:
        """Every booster's probabilities for the same rows, in one predict call of the stacked booster."""
        if self._stacked is None:
            return {key: self.probabilities(matrix, key) for key in self.bundle.boosters}
        stacked = self._stacked.predict(_dmatrix(matrix), validate_features=False).reshape(len(matrix), -1)
        return {
            key: np.asarray(stacked[:, column], dtype=np.float64)
            for column, key in enumerate(self.bundle.boosters)
        }

    def contributions(
        self, matrix: npt.NDArray[np.float32], booster: str = "model", data: xgb.DMatrix | None = None
    ) -> npt.NDArray[np.float32]:
        """Per-field log-odds contributions (rows x contract features), one-hot blocks summed per field.

        `data` is `matrix` as a DMatrix when the caller has built it already."""
        raw = self.bundle.boosters[booster].predict(
            _dmatrix(matrix) if data is None else data,
            pred_contribs=True,
            approx_contribs=not self.exact_contributions,
            validate_features=False,
        )[:, :-1]  # the last column is the bias
        features, offsets = self._blocks
        per_field = np.zeros((matrix.shape[0], len(self.bundle.contract.features)), dtype=np.float32)
        if len(offsets):
            per_field[:, features] = np.add.reduceat(raw, offsets, axis=1)
        return per_field

    def top_factors(
        self,
        matrix: npt.NDArray[np.float32],
        records: list[dict[str, Any]],
        booster: str = "model",
        data: xgb.DMatrix | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Up to five reasons per record, largest |impact| first, named by API field with the value seen."""
        per_field = self.contributions(matrix, booster, data)
        order = np.argsort(-np.abs(per_field), axis=1, kind="stable")[:, :MAX_FACTORS]
        contract = self.bundle.contract
        factors = []
        for row, record in enumerate(records):
            reasons = []
            for feature_index in order[row]:
                impact = float(per_field[row, feature_index])
                if impact == 0.0:
                    break
                reasons.append(
                    {
                        "feature": contract.features[feature_index].name,
                        "value": contract.display_value(record, int(feature_index)),
                        "impact": round(impact, 6),
                    }
                )
            factors.append(reasons)
        return factors

    def score(
        self, records: list[dict[str, Any]], path_prefix: str, explain: bool, booster: str = "model"
    ) -> tuple[npt.NDArray[np.float64], list[list[dict[str, Any]]] | None]:
        """Probabilities for a batch, and its reasons when asked for."""
        matrix = self.encode(records, path_prefix)
        metrics.SCORED_RECORDS.labels(self.name, str(self.version)).inc(len(records))
        if not explain:
            return self.probabilities(matrix, booster), None
        # The reasons need a DMatrix: the probabilities come from the same one. For one record, building a
        # DMatrix and XGBoost's fixed cost per call are most of the time (inplace_predict alone: 0.46 ms).
        data = _dmatrix(matrix)
        predicted = self.bundle.boosters[booster].predict(data, validate_features=False)
        return np.asarray(predicted, dtype=np.float64), self.top_factors(matrix, records, booster, data)

    def check(self) -> None:
        """Score the example stored at training and compare: a version that scores differently is refused."""
        example = self.metadata.get("check")
        if not example:
            return
        matrix = self.encode(example["records"], "check")
        stacked = self.probabilities_by_booster(matrix)
        for booster, expected in example["probabilities"].items():
            for got in (self.probabilities(matrix, booster), stacked[booster]):
                if not np.allclose(got, expected, atol=1e-5):
                    raise ValueError(f"{self.name} v{self.version} scores its stored example differently")


def _dmatrix(matrix: npt.NDArray[np.float32]) -> xgb.DMatrix:
    # One thread: DMatrix defaults to every core, and waking that OpenMP team on each request costs
    # milliseconds of p99 on a busy machine (measured: profile p50 9-16 ms -> 3-4 ms in-process).
    return xgb.DMatrix(matrix, missing=np.nan, nthread=1)


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
