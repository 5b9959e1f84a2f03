"""`clm spec check`: what a spec's data holds, before any training.

The data is read as training reads it (so an unreadable source or a column the spec names that the data lacks
fails here first); then the ID must be unique, the target must have both classes, and each feature column is
scored alone on the training rows (never the holdout). A column that alone ranks the rows almost perfectly is
more likely a leak (an outcome, or another model's output) than a feature: it must be left out, or marked as
checked in the spec with the reason it is a feature all the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import roc_auc_score

from model_registry.contract import api_name
from training.data import dataset_of, read_frame
from training.spec import ModelSpec

log = logging.getLogger(__name__)

LEAK_ROC_AUC = 0.95
"""A single column ranking the rows better than this is flagged as a likely leak."""
TARGET_RATE_FOLDS = 5
SHOWN_DUPLICATES = 5


@dataclass(frozen=True)
class ColumnScore:
    column: str  # as the data and the spec name it
    kind: str  # numeric or categorical
    roc_auc: float  # max(auc, 1 - auc): a column ranking the rows backwards tells as much
    checked: str | None  # the spec's reason why the column is a feature all the same

    @property
    def flagged(self) -> bool:
        return self.roc_auc > LEAK_ROC_AUC

    @property
    def leak(self) -> bool:
        """Flagged, and the spec does not say why it is a feature all the same."""
        return self.flagged and self.checked is None


@dataclass
class SpecCheck:
    spec: ModelSpec
    rows: int
    columns: int
    duplicate_ids: list[str]  # a few IDs that repeat
    repeated_rows: int  # rows whose ID another row shares
    positives: int
    scored_rows: int
    scores: list[ColumnScore] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    @property
    def positive_rate(self) -> float:
        return self.positives / self.rows if self.rows else 0.0

    @property
    def both_classes(self) -> bool:
        return 0 < self.positives < self.rows

    @property
    def leaks(self) -> list[ColumnScore]:
        return [s for s in self.scores if s.leak]

    @property
    def passed(self) -> bool:
        return not self.repeated_rows and self.both_classes and not self.leaks


def check_spec(spec: ModelSpec, data_dir: Path) -> SpecCheck:
    """Read the spec's data and check it; raises DataError when it cannot be read or lacks a named column."""
    log.info("reading %s", spec.data.source)
    frame = read_frame(spec, data_dir)
    repeats = frame[spec.data.id_column].duplicated(keep=False)
    dataset = dataset_of(spec, frame)
    result = SpecCheck(
        spec=spec,
        rows=len(frame),
        columns=frame.shape[1],
        duplicate_ids=[str(i) for i in frame[spec.data.id_column][repeats].unique()[:SHOWN_DUPLICATES]],
        repeated_rows=int(repeats.sum()),
        positives=int(dataset.target.sum()),
        scored_rows=int((~dataset.holdout).sum()),
        left_out=[c.column for c in spec.data.leave_out],
    )
    if not result.both_classes:
        return result
    training_rows = ~dataset.holdout
    y = dataset.target[training_rows]
    column_of = {api_name(c): c for c in frame.columns}
    checked = {c.column: c.why for c in spec.data.checked}
    features = dataset.features[training_rows]
    for number, name in enumerate(features.columns, start=1):
        column = column_of.get(name, name)  # a derived field has no column of its own
        values = features[name]
        if pd.api.types.is_string_dtype(values):
            score = ColumnScore(column, "categorical", categorical_roc_auc(values, y), checked.get(column))
        else:
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
            score = ColumnScore(column, "numeric", numeric_roc_auc(numbers, y), checked.get(column))
        log.info("column %d of %d: %s, ROC AUC %.4f", number, features.shape[1], column, score.roc_auc)
        result.scores.append(score)
    result.scores.sort(key=lambda s: -s.roc_auc)
    return result


def numeric_roc_auc(values: npt.NDArray[np.float64], y: npt.NDArray[np.int8]) -> float:
    """The column's values as the score; missing values are a group of their own, ranked below every value or
    above every value, whichever tells more (as a tree may route them either way)."""
    missing = np.isnan(values)
    if missing.all():
        return 0.5
    if not missing.any():
        return _either_way(y, values)
    low, high = np.nanmin(values) - 1, np.nanmax(values) + 1
    return max(
        _either_way(y, np.where(missing, low, values)), _either_way(y, np.where(missing, high, values))
    )


def categorical_roc_auc(values: pd.Series, y: npt.NDArray[np.int8]) -> float:
    """Each row scored by the target rate of its category (missing is a category of its own), learnt on the
    other folds: in-sample rates would give any column of mostly unique values (a name, a free text) a
    perfect score without it telling anything about new rows."""
    groups = values.astype(object).where(values.notna(), "<missing>").to_numpy()
    fold = np.random.default_rng(0).permutation(len(y)) % TARGET_RATE_FOLDS
    score = np.empty(len(y), dtype=np.float64)
    for k in range(TARGET_RATE_FOLDS):
        learn, apply = fold != k, fold == k
        rates = pd.Series(y[learn]).groupby(groups[learn]).mean()
        score[apply] = pd.Series(groups[apply]).map(rates).fillna(y[learn].mean()).to_numpy()
    return _either_way(y, score)


def _either_way(y: npt.NDArray[np.int8], score: npt.NDArray[np.float64]) -> float:
    auc = float(roc_auc_score(y, score))
    return max(auc, 1 - auc)
