"""Reading a spec's data file: leave-out rules, API field names, the fixed holdout split of EVALUATION.md."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from model_registry.contract import Feature, FeatureContract, api_name
from model_registry.derived import Derivation, derive
from training.spec import ROW_NUMBER, DataSpec, ModelSpec

log = logging.getLogger(__name__)


def is_holdout(record_id: Any) -> bool:
    """EVALUATION.md's split: never changes between retrains, so versions compare on the same rows."""
    return int(hashlib.sha256(str(record_id).encode()).hexdigest(), 16) % 5 == 0


def is_validation(record_id: Any, one_in: int) -> bool:
    """A second, independent hash picks the early-stopping rows among the training rows."""
    return int(hashlib.sha256(f"validation:{record_id}".encode()).hexdigest(), 16) % one_in == 0


@dataclass
class Dataset:
    """Feature columns under their API names, the 0/1 target and the split, row for row."""

    features: pd.DataFrame
    target: npt.NDArray[np.int8]
    ids: pd.Series
    holdout: npt.NDArray[np.bool_]
    validation: npt.NDArray[np.bool_]
    dropped: dict[str, str] = field(default_factory=dict)
    derived: tuple[Derivation, ...] = ()

    @property
    def train(self) -> npt.NDArray[np.bool_]:
        return ~self.holdout & ~self.validation

    def records(self, mask: npt.NDArray[np.bool_] | None = None) -> list[dict[str, Any]]:
        """Rows as API records (missing values as None), the form serving receives."""
        frame = self.features if mask is None else self.features[mask]
        return frame_records(frame)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    as_objects = frame.astype(object)
    return as_objects.where(as_objects.notna(), None).to_dict("records")  # type: ignore[no-any-return]


def numbers_read(frame: pd.DataFrame, fields: Iterable[str]) -> pd.DataFrame:
    """The fields' columns as numbers. One bad value in a CSV column ("old" among ages) makes a reader keep the
    whole column as text: its numbers are read back here, and only the cells with the bad value stay text, so
    their rows alone are refused (by the ingest, by `clm score file`)."""
    frame = frame.copy()
    for name in fields:
        column = frame.get(name)
        if column is None or pd.api.types.is_numeric_dtype(column):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        unreadable = column.notna() & numbers.isna()
        frame[name] = numbers.astype(object).where(~unreadable, column) if unreadable.any() else numbers
    return frame


class DataError(Exception):
    """A spec's data cannot be read, or lacks a column the spec names."""


def read_frame(spec: ModelSpec, data_dir: Path) -> pd.DataFrame:
    """The spec's rows with every column it names checked present; the same frame from any kind of source."""
    frame = read_source(spec.data, data_dir)
    if spec.data.id_column == ROW_NUMBER:
        frame[ROW_NUMBER] = np.arange(len(frame))
    missing = missing_columns(spec, frame)
    if missing:
        raise DataError(
            f"{spec.data.source} has no column {', '.join(missing)}: check the spec of {spec.key}"
        )
    if spec.data.first_row_per_id:
        frame = frame.drop_duplicates(subset=spec.data.id_column, keep="first").reset_index(drop=True)
    return frame


def read_source(data: DataSpec, data_dir: Path) -> pd.DataFrame:
    """The rows as they are, from a CSV or Parquet file or a SQL query; a typed source's text columns read as
    the CSV reader reads text (`like_csv`), so the columns, and the model, do not depend on the source."""
    if data.sql is not None:
        assert data.url_env is not None  # the spec's validation: sql comes with url_env
        return like_csv(read_query(data.sql, data.url_env), data.missing_values)
    assert data.file is not None  # the spec's validation: a file when there is no query
    path = data_dir / data.file  # an absolute file replaces data_dir: it is used as it is
    if not path.is_file():
        raise DataError(f"{path} not found: set CLM_DATA_DIR to the folder holding {data.file}")
    try:
        if not data.is_csv:
            return like_csv(pd.read_parquet(path), data.missing_values)
        return pd.read_csv(
            path,
            sep=data.separator,
            na_values=data.missing_values,
            keep_default_na=True,
            low_memory=False,
        )
    except (OSError, ValueError) as exc:  # pandas' parser errors and pyarrow's ArrowInvalid are ValueErrors
        raise DataError(f"cannot read {path}: {exc}") from exc


def read_query(sql: str, url_env: str) -> pd.DataFrame:
    """The query's rows from the database whose URL the environment variable `url_env` holds."""
    url = os.environ.get(url_env)
    if not url:
        raise DataError(f"the spec's query reads the database named by ${url_env}, which is not set")
    try:
        shown = make_url(url).render_as_string(hide_password=True)
        engine = create_engine(url)
    except (ArgumentError, ValueError) as exc:
        raise DataError(f"${url_env} is not a database URL: {exc}") from exc
    try:
        with engine.connect() as connection:
            return pd.read_sql_query(text(sql), connection)
    except (SQLAlchemyError, pd.errors.DatabaseError) as exc:
        # pandas wraps the database's error; its first line says what went wrong without the whole query.
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
        reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
        raise DataError(f"the spec's query on {shown} failed: {reason}") from exc
    finally:
        engine.dispose()


def like_csv(frame: pd.DataFrame, missing_values: list[str]) -> pd.DataFrame:
    """A typed source's frame as the CSV reader would give the same rows: in text columns the spec's missing
    values and empty text are missing, and a text column holding only numbers is numeric (a query may well
    read a text column, as Telco's TotalCharges with its blanks)."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if not (pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)):
            continue
        series = series.mask(series.isin(["", *missing_values]))
        try:
            out[column] = pd.to_numeric(series)
        except (ValueError, TypeError):
            out[column] = series
    return out


def declared_columns(spec: ModelSpec) -> dict[str, str]:
    """The data's columns the spec names, each with the spec field naming it."""
    data = spec.data
    named = {column: "categorical" for column in data.categorical}
    named.update({c.column: "checked" for c in data.checked})
    named.update({c.column: "leave_out" for c in data.leave_out})
    if data.target_column is not None:
        named[data.target_column] = "target_column"
    named[data.id_column] = "id_column"
    return named


def missing_columns(spec: ModelSpec, frame: pd.DataFrame) -> list[str]:
    """Each column the spec names that the frame lacks, with the spec field naming it. A derived field reads
    API names: the columns' or an earlier derived field's."""
    missing = [f"{c!r} ({role})" for c, role in declared_columns(spec).items() if c not in frame.columns]
    fields = {api_name(c) for c in frame.columns}
    for derivation in spec.data.derived:
        missing += [
            f"{source!r} (source of derived field {derivation.field!r})"
            for source in derivation.sources
            if source not in fields
        ]
        fields.add(derivation.field)
    return missing


def id_field(spec: ModelSpec) -> str:
    return spec.data.id_field or api_name(spec.data.id_column)


def load_dataset(spec: ModelSpec, data_dir: Path, exclude: list[str] | None = None) -> Dataset:
    """The spec's rows, with every left-out column gone and each remaining column named as the API names it."""
    return dataset_of(spec, read_frame(spec, data_dir), exclude)


def dataset_of(spec: ModelSpec, frame: pd.DataFrame, exclude: list[str] | None = None) -> Dataset:
    """`load_dataset` on rows already read (`read_frame`), so a query runs once."""
    frame = with_derived(frame, spec.data.derived)
    ids = frame[spec.data.id_column]
    if spec.data.target_column is None:
        raise DataError(
            f"the spec of {spec.key} names no target_column: its kind {spec.kind!r} has no target"
        )
    if spec.data.positive_min is not None:
        target = (pd.to_numeric(frame[spec.data.target_column]) >= spec.data.positive_min).to_numpy(np.int8)
    else:
        target = frame[spec.data.target_column].astype(str).isin(spec.data.positive_values).to_numpy(np.int8)
    dropped = {c.column: c.why for c in spec.data.leave_out}
    dropped[spec.data.id_column] = "record ID, not a property of the record"
    dropped.setdefault(spec.data.target_column, "the target")  # a reason the spec gives wins
    for column in exclude or []:
        dropped.setdefault(column, "excluded by the model kind")
    features = frame.drop(columns=[c for c in dropped if c in frame.columns])
    for column in features.columns:
        if features[column].nunique(dropna=True) <= 1:
            dropped[column] = "holds a single value in the data: carries no information"
    features = features.drop(columns=[c for c in features.columns if c in dropped])
    forced = set(spec.data.categorical)
    for column in features.columns:
        if pd.api.types.is_bool_dtype(features[column]):  # true/false columns: flags, sent as 0 and 1
            features[column] = features[column].astype(np.int8)
        if column in forced or not pd.api.types.is_numeric_dtype(features[column]):
            features[column] = features[column].astype("string")
    features = features.rename(columns=api_name)
    holdout = np.fromiter((is_holdout(i) for i in ids), dtype=bool, count=len(ids))
    validation = (
        np.fromiter(
            (is_validation(i, spec.training.validation_share) for i in ids), dtype=bool, count=len(ids)
        )
        & ~holdout
    )
    log.info(
        "%s: %d rows (%d train, %d validation, %d holdout), %d features, positive rate %.3f",
        spec.data.source,
        len(frame),
        (~holdout & ~validation).sum(),
        validation.sum(),
        holdout.sum(),
        features.shape[1],
        target.mean(),
    )
    return Dataset(
        features=features,
        target=target,
        ids=ids,
        holdout=holdout,
        validation=validation,
        dropped=dropped,
        derived=tuple(spec.data.derived),
    )


def with_derived(frame: pd.DataFrame, derivations: list[Derivation]) -> pd.DataFrame:
    """The frame with each derived field computed by the very code that serving runs (model_registry.derived),
    before any column is dropped: a derived field may replace its own source (a default for a blank)."""
    if not derivations:
        return frame
    rows = [derive(record, derivations) for record in frame_records(frame.rename(columns=api_name))]
    problems = sorted({problem for _, found in rows for problem in found})
    if problems:
        raise ValueError(f"the data does not fit the spec's derived fields: {problems[:3]}")
    column_of = {api_name(c): c for c in frame.columns}
    out = frame.copy()
    for derivation in derivations:
        values = [record[derivation.field] for record, _ in rows]
        out[column_of.get(derivation.field, derivation.field)] = np.array(
            [np.nan if v is None else v for v in values], dtype=np.float64
        )
    return out


def build_contract(dataset: Dataset, id_name: str, min_category_count: int) -> FeatureContract:
    """The contract from the non-holdout rows: each feature's kind and the categories common enough to learn."""
    fitting = dataset.features[~dataset.holdout]
    descriptions = {d.field: d.description for d in dataset.derived}
    features = []
    for column in fitting.columns:
        series = fitting[column]
        if pd.api.types.is_string_dtype(series):
            counts = series.value_counts(dropna=True)
            categories = tuple(sorted(str(c) for c in counts[counts >= min_category_count].index))
            features.append(Feature(name=column, kind="categorical", categories=categories))
        else:
            features.append(Feature(name=column, kind="numeric", description=descriptions.get(column, "")))
    derived = tuple(d for d in dataset.derived if d.field in fitting.columns)
    return FeatureContract(id_field=id_name, features=features, derived=derived)


def encode_training_records(
    contract: FeatureContract, records: list[dict[str, Any]]
) -> npt.NDArray[np.float32]:
    """The training rows through the same encoder serving uses; a row that does not fit is a bug, not data."""
    matrix, errors = contract.encode(records)
    if errors:
        raise ValueError(f"training data does not fit its own contract: {errors[:3]}")
    return matrix
