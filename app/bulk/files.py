"""`clm score file`: a CSV or Parquet file of records scored in chunks, with bounded memory.

The file is read a chunk at a time (pandas' chunked CSV reader, pyarrow's Parquet record batches) and each
chunk is scored by app/bulk/figures.py and appended to the output: memory holds one chunk, whatever the file's
length. Every good row gives one output row, in input order, with the version's name and number; a row the
API would refuse goes to the rejects file with its reasons, and the job goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.bulk.defaults import ERROR_COLUMN
from app.bulk.figures import Column, Options, output_columns, score_frame
from app.scoring.runtime.scorer import Scorer
from model_registry.contract import FeatureContract, api_name
from training.data import numbers_read

PARQUET_SUFFIXES = (".parquet", ".pq")
ROW_COLUMN, REASON_COLUMN = (
    "row",
    "reason",
)  # the rejects file: the input row (0-based) and why it was refused
_ARROW_TYPES = {"string": pa.string(), "double": pa.float64(), "long": pa.int64()}


@dataclass
class ChunkDone:
    first_row: int
    rows: int
    rejected: int
    rows_per_second: float


@dataclass
class FileReport:
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)  # the first few, to show

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


SHOWN_REASONS = 5


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def read_chunks(
    path: Path, contract: FeatureContract, chunk_rows: int, separator: str = ","
) -> Iterator[pd.DataFrame]:
    """The file's records a chunk at a time, columns under their API names (a data set's own column names
    map to them by API.md's rule). Parquet keeps its types; CSV is text, so a number field's cell reads as a
    number when it is one and stays text otherwise (refused by the contract, as the API refuses "abc")."""
    if is_parquet(path):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            # Python values, None for null: an integer column with nulls stays integers (not 3.0), as in JSON.
            frame = pd.DataFrame(batch.to_pydict(), dtype=object)
            yield frame.rename(columns=api_name)
        return
    for frame in pd.read_csv(path, sep=separator, dtype=str, chunksize=chunk_rows, keep_default_na=True):
        yield numbers_read(frame.rename(columns=api_name), contract.number_fields)


class _Output:
    """The scored rows, appended chunk by chunk to a Parquet or CSV file."""

    def __init__(self, path: Path, columns: list[Column]) -> None:
        self.path = path
        self.columns = columns
        self._parquet: pq.ParquetWriter | None = None
        self._started = False

    def write(self, table: pd.DataFrame) -> None:
        if is_parquet(self.path):
            schema = pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in self.columns])
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, schema)
            self._parquet.write_table(pa.Table.from_pandas(table, schema=schema, preserve_index=False))
        else:
            table.to_csv(self.path, mode="a" if self._started else "w", header=not self._started, index=False)
        self._started = True

    def close(self) -> None:
        if not self._started:  # an empty input still gives a file, with the columns
            self.write(pd.DataFrame(columns=[c.name for c in self.columns]))
        if self._parquet is not None:
            self._parquet.close()


class _Rejects:
    """The refused rows as read, each with its row number and reasons, in a CSV file created on the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._started = False

    def write(self, frame: pd.DataFrame, reasons: pd.Series, first_row: int) -> None:
        rows = frame.loc[reasons.index]
        out = pd.concat(
            [
                pd.DataFrame(
                    {ROW_COLUMN: reasons.index + first_row, REASON_COLUMN: reasons.to_numpy()},
                    index=rows.index,
                ),
                rows,
            ],
            axis=1,
        )
        out.to_csv(self.path, mode="a" if self._started else "w", header=not self._started, index=False)
        self._started = True


def score_file(
    scorer: Scorer,
    source: Path,
    out: Path,
    rejects: Path,
    options: Options,
    *,
    chunk_rows: int,
    separator: str = ",",
    progress: Callable[[ChunkDone], None] = lambda _: None,
) -> FileReport:
    """Score every row of `source` into `out` (Parquet or CSV by its suffix); refused rows go to `rejects`."""
    figures = [c for c in output_columns(scorer) if c.name != ERROR_COLUMN]
    if not options.explain:
        figures = [c for c in figures if c.name != "top_factors"]
    columns = [*figures, Column("model", "string"), Column("version", "long")]
    output, refused = _Output(out, columns), _Rejects(rejects)
    report = FileReport()
    started = time.perf_counter()
    try:
        for frame in read_chunks(source, scorer.bundle.contract, chunk_rows, separator):
            if frame.empty:  # a CSV holding only its header
                continue
            frame = frame.reset_index(drop=True)
            chunk_started = time.perf_counter()
            scored = score_frame(scorer, frame, options)
            bad = scored[ERROR_COLUMN].notna()
            if bad.any():
                refused.write(frame, scored.loc[bad, ERROR_COLUMN], report.rows)
                shown = scored.loc[bad, ERROR_COLUMN].head(SHOWN_REASONS)
                report.reasons.extend(f"row {report.rows + row}: {reason}" for row, reason in shown.items())
            good = scored.loc[~bad, [c.name for c in figures]].assign(
                model=scorer.name, version=scorer.version
            )
            output.write(good)
            seconds = time.perf_counter() - chunk_started
            progress(
                ChunkDone(report.rows, len(frame), int(bad.sum()), len(frame) / seconds if seconds else 0.0)
            )
            report.rows += len(frame)
            report.rejected += int(bad.sum())
    finally:
        output.close()
    report.scored = report.rows - report.rejected
    report.seconds = time.perf_counter() - started
    del report.reasons[SHOWN_REASONS:]
    return report


def default_rejects(out: Path) -> Path:
    """out.parquet -> out.rejects.csv"""
    return out.with_name(f"{out.stem}.rejects.csv")
