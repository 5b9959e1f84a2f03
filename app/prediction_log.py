"""The prediction log: every score served, written to the database off the request path.

Routes hand their scores to `submit`, which only appends to a bounded in-memory buffer; a writer thread drains
it in batches. While the database is down the rows wait and the writer retries with back-off, so scoring goes
on; rows that do not fit are dropped and counted (clm_prediction_log_dropped_total), never silently. Each row
gets its id when it is served, so a batch re-sent after a commit whose answer was lost is not written twice.
`close` writes what is left before the process exits.

Besides the scores, the log keeps some scored records in full (scored_records, the fields as the model read
them), written by the same thread with the same retries, a full batch at a time (RECORDS_WAIT_INTERVALS): a
share `sample_rate` of all records scored, drawn at random (what drift compares with a version's reference
profile), and every stored customer scored by id (what `clm retrain --from-store` trains on: the record as it
was when scored). A record is turned into JSON by the writer thread, not on the request path.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from pydantic_core import to_json
from sqlalchemy import Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import metrics
from app.ids import UniqueIds
from app.models import ScoredRecord
from app.repositories import predictions
from app.repositories.scored_records import RECORD_COLUMNS

if TYPE_CHECKING:
    from app.scoring.runtime.scorer import Scorer

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 5.0
# Kept records are written a full batch at a time (a tenth as many as the scores at the default rate), or once
# the first waiting has waited this many intervals: each write of a table costs its statements whatever its
# rows, so writing them with every batch of scores cost a third more per 1,000 scores (bench/prediction_log.py).
RECORDS_WAIT_INTERVALS = 10
# The database is down, unreachable or too busy: keep the rows and retry.
UNREACHABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


class Prediction(NamedTuple):
    """One score served for one record (and item, when a model scores several per record, e.g. a product).
    A named tuple: a 1,000-record batch makes a thousand, and a tuple is the cheapest object to make."""

    record_id: str | int | None
    score: float
    label: str | None = None
    item: str = ""


@dataclass(frozen=True)
class ScoredBatch:
    """A request's records as the model read them and their results, in the same order: the log keeps some in
    full (sampled, or stored customers scored by id). Only the kept ones are looked at, so a batch costs the
    request path one random draw per record (numpy) and Python work per kept record only."""

    records: Sequence[dict[str, Any]]
    results: Sequence[dict[str, Any]]
    score_field: str  # the result's score
    id_field: str  # the record's id
    by_id: frozenset[int] = frozenset()  # positions of stored customers, completed from the customer store


class PredictionLog:
    def __init__(
        self, engine: Engine, *, capacity: int, batch_size: int, interval: float, sample_rate: float = 0.0
    ) -> None:
        self._engine = engine
        self._ids = UniqueIds()
        self._rows = predictions.DriverRows(engine.dialect)
        self._record_rows = predictions.DriverRows(
            engine.dialect,
            ScoredRecord.__table__,  # type: ignore[arg-type]
            RECORD_COLUMNS,
        )
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval = interval
        self.sample_rate = sample_rate
        self._draw = np.random.default_rng()
        self._buffer: deque[predictions.LogRow] = deque()
        # Scored records waiting, their record still a dict (JSON is made by the writer), since when.
        self._records: deque[predictions.LogRow] = deque()
        self._records_since = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._writer = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._failing = False
        self._deadline = 0.0
        for reason in ("overflow", "shutdown", "refused"):
            metrics.PREDICTION_LOG_DROPPED.labels(reason)  # every reason exported from the start, at 0

    @property
    def pending(self) -> int:
        """Rows served but not yet written."""
        return len(self._buffer)

    def start(self) -> None:
        self._writer.start()

    def submit(
        self,
        route: str,
        model: str,
        version: int,
        request_id: str,
        scores: Iterable[Prediction],
        records: ScoredBatch | None = None,
    ) -> None:
        """Queue scores (and the records to keep in full) for writing; never blocks on the database."""
        served_at = datetime.now(UTC)
        if records is not None and (self.sample_rate > 0 or records.by_id):
            self._keep_records(served_at, model, version, records)
        rows = self._rows.build(
            self._ids,
            served_at,
            route[:128],
            model[:128],
            version,
            request_id[:128],
            (
                (
                    None if p.record_id is None else str(p.record_id)[:128],
                    p.item[:64],
                    p.score,
                    None if p.label is None else p.label[:32],
                )
                for p in scores
            ),
        )
        with self._lock:
            room = self.capacity - len(self._buffer)
            kept = rows if len(rows) <= room else rows[: max(room, 0)]
            self._buffer.extend(kept)
            size = len(self._buffer)
        metrics.PREDICTION_LOG_BUFFERED.set(size)
        if len(kept) < len(rows):
            metrics.PREDICTION_LOG_DROPPED.labels("overflow").inc(len(rows) - len(kept))
            log.error(
                "prediction log full (%d rows): %d rows of %s dropped",
                self.capacity,
                len(rows) - len(kept),
                model,
                extra={"model": model, "dropped": len(rows) - len(kept)},
            )
        if size >= self.batch_size:
            self._wake.set()

    def _keep_records(self, served_at: datetime, model: str, version: int, batch: ScoredBatch) -> None:
        """The sampled records and those scored by id, queued as scored_records rows (record not yet JSON)."""
        with self._lock:  # a numpy generator is not to be shared by threads unguarded
            sampled = set(np.flatnonzero(self._draw.random(len(batch.records)) < self.sample_rate).tolist())
        bound_at = self._record_rows.bind("served_at", served_at)
        kept = []
        for position in sorted(sampled | batch.by_id):
            record = batch.records[position]
            record_id = record.get(batch.id_field)
            kept.append(
                (
                    next(self._ids),
                    bound_at,
                    model,
                    version,
                    None if record_id is None else str(record_id)[:128],
                    position in sampled,
                    batch.results[position][batch.score_field],
                    record,
                )
            )
        if not kept:
            return
        with self._lock:
            room = max(self.capacity - len(self._records), 0)
            if not self._records:
                self._records_since = time.monotonic()
            self._records.extend(kept[:room])
        if len(kept) > room:
            metrics.SCORED_RECORDS_DROPPED.inc(len(kept) - room)

    def close(self, timeout: float) -> None:
        """Write what is buffered (retrying for up to `timeout` seconds), then stop; count what could not be."""
        self._deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        # A write in flight may take a connect or lock timeout (5 s) to fail.
        self._writer.join(timeout + 6.0)
        if self._records:
            metrics.SCORED_RECORDS_DROPPED.inc(len(self._records))
        left = self.pending
        if left:
            metrics.PREDICTION_LOG_DROPPED.labels("shutdown").inc(left)
            log.error(
                "prediction log: %d rows could not be written before shutdown", left, extra={"dropped": left}
            )

    def _run(self) -> None:
        delay = self.interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            try:
                written = self._write_pending()
            except Exception:  # the writer must outlive any surprise: the rows stay and are retried
                log.exception("prediction log: unexpected error while writing")
                written = False
            if self._stopping.is_set():
                if written or time.monotonic() >= self._deadline:
                    return
                delay = 0.5
            else:
                delay = self.interval if written else min(delay * 2, MAX_RETRY_DELAY)

    def _write_pending(self) -> bool:
        """Write the buffer batch by batch; False when the database failed (the rows stay for the next try)."""
        while True:
            with self._lock:
                batch = list(itertools.islice(self._buffer, self.batch_size))
                kept = list(itertools.islice(self._records, self.batch_size)) if self._records_due() else []
            if not batch and not kept:
                return True
            try:
                self._write_batch(batch, kept)
            except UNREACHABLE as exc:
                self._note_failure(exc)
                return False
            with self._lock:
                for _ in batch:
                    self._buffer.popleft()
                for _ in kept:
                    self._records.popleft()
                if kept and self._records:
                    self._records_since = time.monotonic()
                size = len(self._buffer)
            metrics.PREDICTION_LOG_BUFFERED.set(size)
            if self._failing:
                self._failing = False
                log.info(
                    "prediction log: the database is back; writing the %d rows that waited", size + len(batch)
                )

    def _records_due(self) -> bool:
        """Kept records go out a full batch at a time, or when the first has waited long enough, or at shutdown."""
        return bool(self._records) and (
            len(self._records) >= self.batch_size
            or self._stopping.is_set()
            or time.monotonic() - self._records_since >= RECORDS_WAIT_INTERVALS * self.interval
        )

    def _write_batch(self, batch: list[predictions.LogRow], kept: list[predictions.LogRow]) -> None:
        records = [(*row[:-1], to_json(row[-1], fallback=str).decode()) for row in kept]
        try:
            self._write(batch, records)
        except UNREACHABLE:
            raise
        except Exception:
            # Refused, not unreachable (a value the column cannot hold): keep every row the database accepts
            # and count the others, so one bad row cannot hold the log up for good.
            for row in batch:
                self._write_refusable([row], [])
            for row in records:
                self._write_refusable([], [row])

    def _write_refusable(self, batch: list[predictions.LogRow], records: list[predictions.LogRow]) -> None:
        try:
            self._write(batch, records)
        except UNREACHABLE:
            raise
        except Exception:
            metrics.PREDICTION_LOG_DROPPED.labels("refused").inc(len(batch))
            metrics.SCORED_RECORDS_DROPPED.inc(len(records))
            log.exception("prediction log: the database refused a row: %r", (batch or records)[0])

    def _write(self, rows: list[predictions.LogRow], records: list[predictions.LogRow]) -> None:
        with self._engine.begin() as connection:
            self._rows.append(connection, rows)
            self._record_rows.append(connection, records)
        metrics.PREDICTION_LOG_WRITTEN.inc(len(rows))
        metrics.SCORED_RECORDS_WRITTEN.inc(len(records))

    def _note_failure(self, exc: Exception) -> None:
        metrics.PREDICTION_LOG_WRITE_FAILURES.inc()
        if not self._failing:
            self._failing = True
            log.warning(
                "prediction log: database unavailable (%s); %d rows wait in memory and are retried",
                type(exc).__name__,
                self.pending,
            )


@dataclass(frozen=True)
class RequestPredictions:
    """The prediction log bound to one request: `log(scorer, scores)` from any scoring route."""

    prediction_log: PredictionLog
    route: str
    request_id: str

    def __call__(
        self, scorer: Scorer, scores: Iterable[Prediction], records: ScoredBatch | None = None
    ) -> None:
        self.prediction_log.submit(self.route, scorer.name, scorer.version, self.request_id, scores, records)
