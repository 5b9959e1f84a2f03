"""The prediction log: append served scores, and read them back joined with outcomes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.models import Outcome, PredictionRow
from app.models.base import as_utc
from app.repositories.json_rows import json_rows

_TABLE: Table = PredictionRow.__table__  # type: ignore[assignment]
# The order of a row's values: DriverRows.build makes them in this order and the statement names them so.
COLUMNS = (
    "id",
    "served_at",
    "route",
    "model",
    "version",
    "record_id",
    "item",
    "score",
    "label",
    "request_id",
)
LogRow = tuple[Any, ...]
# SQLite's least limit on a statement's parameters (999 before 3.32, 32,766 since): an INSERT takes as many rows
# as fit in it.
SQLITE_PARAMETERS = 999


class DriverRows:
    """Prediction-log rows (or another append-only log's: `table`, `columns`) in the database driver's own form,
    and the statement that appends them.

    The log is written in bulk all day long: an ORM or Core insert spent ~20 us of Python per row on parameter
    handling, three times the database's own work (SQLite, 1,000-row batches). Rows are built here as plain
    tuples, the values converted by SQLAlchemy's own bind processors for the backend (so they are stored
    exactly as the ORM stores and reads them). Values the same for a whole request (time, route, model) are
    converted once. SQLite takes as many rows to a statement as fit in it (INSERT ... VALUES (...), (...)):
    Python's sqlite3 executemany takes the GIL back after every row, and a writer thread beside a busy event
    loop then waits up to the switch interval (5 ms) for it each time, so 1,000 rows took seconds and preempted
    the loop a thousand times. PostgreSQL takes them by COPY (psycopg's executemany sends rows one by one through
    its pipeline: ~40 ms of Python per 1,000 rows).
    """

    def __init__(self, dialect: Dialect, table: Table = _TABLE, columns: tuple[str, ...] = COLUMNS) -> None:
        self._table_name = table.name
        self._columns = columns
        self._processors = {
            name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
        }
        self._by_copy = dialect.name == "postgresql"
        # SQLite's INSERT statements, made once per count of rows (_insert).
        self._row_marker = f"({', '.join('?' * len(columns))})"
        self._rows_per_insert = SQLITE_PARAMETERS // len(columns)
        self._inserts: dict[int, str] = {}

    def _insert(self, rows: int) -> str:
        """SQLite's statement for `rows` rows (made once per count); a row already there (same id) is skipped."""
        statement = self._inserts.get(rows)
        if statement is None:
            values = ", ".join([self._row_marker] * rows)
            statement = self._inserts[rows] = (
                f"INSERT INTO {self._table_name} ({', '.join(self._columns)}) VALUES {values} "
                "ON CONFLICT DO NOTHING"
            )
        return statement

    def bind(self, name: str, value: Any) -> Any:
        """A value of column `name` in the driver's form."""
        process = self._processors[name]
        return value if process is None or value is None else process(value)

    def build(
        self,
        ids: Iterator[str],
        served_at: datetime,
        route: str,
        model: str,
        version: int,
        request_id: str,
        scores: Iterable[tuple[str | None, str, float, str | None]],
    ) -> list[LogRow]:
        """One row per (record id, item, score, label), in COLUMNS order; `ids` gives each row's id as 32 hex
        digits, which both backends store as they store a UUID."""
        constants = (self.bind("served_at", served_at), route, model, version)
        return [
            (next(ids), *constants, record_id, item, score, label, request_id)
            for record_id, item, score, label in scores
        ]

    def append(self, connection: Connection, rows: Sequence[LogRow]) -> None:
        """Insert rows; a row already there (same id, written by an attempt whose commit was lost) is skipped."""
        if not rows:
            return
        if not self._by_copy:
            for start in range(0, len(rows), self._rows_per_insert):
                chunk = rows[start : start + self._rows_per_insert]
                connection.exec_driver_sql(self._insert(len(chunk)), tuple(v for row in chunk for v in row))
            return
        # COPY cannot skip conflicts: rows go to a staging table of this session (emptied at commit), then
        # into the log by one INSERT ... ON CONFLICT DO NOTHING.
        columns = ", ".join(self._columns)
        staging = f"{self._table_name}_incoming"
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {self._table_name}) ON COMMIT DELETE ROWS"
        )
        copy_statement = f"COPY {staging} ({columns}) FROM STDIN"
        driver_error = connection.dialect.loaded_dbapi.Error
        try:
            with (
                connection.connection.dbapi_connection.cursor() as cursor,  # type: ignore[union-attr]
                cursor.copy(copy_statement) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        except driver_error as exc:
            # The driver's own error, as SQLAlchemy would raise it: the writer tells an outage (keep the rows,
            # retry) from a refusal by these types.
            raise DBAPIError.instance(copy_statement, None, exc, driver_error) from exc
        connection.exec_driver_sql(
            f"INSERT INTO {self._table_name} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT DO NOTHING"
        )


# A stored customer's churn scores, newest first, for its profile's trend: a column of the customer's own read
# (app/repositories/customers.py), so the profile costs one round trip. The index on (model, record_id, item,
# served_at) finds the newest without sorting all of a customer's scores.
_HISTORY_ROWS = (
    select(_TABLE.c.served_at, _TABLE.c.version, _TABLE.c.score)
    .where(
        _TABLE.c.model == bindparam("history_model"),
        _TABLE.c.record_id == bindparam("customer_id"),
        _TABLE.c.item == "",
    )
    .order_by(_TABLE.c.served_at.desc())
    .limit(bindparam("history_limit", type_=Integer))
    .subquery("history")
)
SCORE_HISTORY = (
    select(json_rows(_HISTORY_ROWS.c.served_at, _HISTORY_ROWS.c.version, _HISTORY_ROWS.c.score))
    .scalar_subquery()
    .label("score_history")
)


def history_params(model: str, limit: int) -> dict[str, Any]:
    """SCORE_HISTORY's parameters: the customer's last `limit` scores by `model` (its id is `customer_id`)."""
    return {"history_model": model, "history_limit": limit}


def history_of(rows: list[list[Any]] | None) -> list[tuple[datetime, int, float]]:
    """SCORE_HISTORY's value as (served_at, version, score), newest first."""
    history = [
        (as_utc(datetime.fromisoformat(at)), int(version), float(score)) for at, version, score in rows or ()
    ]
    return sorted(history, key=lambda scoring: scoring[0], reverse=True)


def count(session: Session, model: str | None = None) -> int:
    statement = select(func.count()).select_from(PredictionRow)
    if model is not None:
        statement = statement.where(PredictionRow.model == model)
    return session.scalar(statement) or 0


@dataclass(frozen=True)
class VersionCounts:
    """One version's judged scores, aggregated by the database: a handful of numbers whatever the log's size."""

    version: int
    records: int
    positives: int
    # Positives' ranks among the version's scores (1 = lowest; tied scores share their average rank): the
    # Mann-Whitney statistic, from which ROC AUC follows exactly, ties counting one half.
    positive_rank_sum: float
    top_records: int  # the top tenth by score (rounded up)
    top_positives: int


@dataclass(frozen=True)
class GroupCounts:
    version: int
    group: str
    records: int
    positives: int
    mean_score: float


def _judged(model: str, event: str, outcome_item: str | None) -> Any:
    """Each record's last score from each version of `model` served before its outcome, with the outcome.

    `outcome_item` None matches outcomes by the logged item (a product); a string matches outcomes with that
    item (a lead line, '' for none). Scores served after the outcome was observed are left out: they were not
    a prediction of it.
    """
    item_match = Outcome.item == (PredictionRow.item if outcome_item is None else literal(outcome_item))
    latest = func.row_number().over(
        partition_by=(PredictionRow.version, PredictionRow.record_id, PredictionRow.item),
        order_by=PredictionRow.served_at.desc(),
    )
    joined = (
        select(
            PredictionRow.version,
            PredictionRow.score,
            PredictionRow.label,
            PredictionRow.item,
            Outcome.happened,
            latest.label("latest"),
        )
        .join(
            Outcome,
            and_(
                Outcome.event == event,
                Outcome.record_id == PredictionRow.record_id,
                item_match,
                PredictionRow.served_at <= Outcome.observed_at,
            ),
        )
        .where(PredictionRow.model == model)
        .subquery()
    )
    return (
        select(joined.c.version, joined.c.score, joined.c.label, joined.c.item, joined.c.happened)
        .where(joined.c.latest == 1)
        .subquery("judged")
    )


def judged_counts(
    session: Session, model: str, event: str, outcome_item: str | None
) -> tuple[list[VersionCounts], list[GroupCounts], list[GroupCounts]]:
    """Per version (ascending), and per version and label, and per version and item: the judged scores'
    counts, computed in SQL (three aggregate queries; nothing per record comes back)."""
    judged = _judged(model, event, outcome_item)
    version = judged.c.version
    ranked = select(
        version,
        judged.c.happened,
        func.rank().over(partition_by=version, order_by=judged.c.score).label("low_rank"),
        func.count().over(partition_by=(version, judged.c.score)).label("ties"),
        func.row_number().over(partition_by=version, order_by=judged.c.score.desc()).label("position"),
        func.count().over(partition_by=version).label("n"),
    ).subquery("ranked")
    positive = case((ranked.c.happened, 1), else_=0)
    in_top = ranked.c.position <= (ranked.c.n + 9) // 10
    versions = session.execute(
        select(
            ranked.c.version,
            func.count(),
            func.sum(positive),
            func.sum(case((ranked.c.happened, ranked.c.low_rank + (ranked.c.ties - 1) / 2.0), else_=0.0)),
            func.sum(case((in_top, 1), else_=0)),
            func.sum(case((and_(in_top, ranked.c.happened), 1), else_=0)),
        )
        .group_by(ranked.c.version)
        .order_by(ranked.c.version)
    )
    by_version = [
        VersionCounts(v, records, positives or 0, float(rank_sum or 0), top or 0, top_positives or 0)
        for v, records, positives, rank_sum, top, top_positives in versions
    ]
    return by_version, _groups(session, judged, judged.c.label), _groups(session, judged, judged.c.item)


def _groups(session: Session, judged: Any, column: Any) -> list[GroupCounts]:
    """Counts per version and value of `column`; no value (NULL or '') is no group."""
    rows = session.execute(
        select(
            judged.c.version,
            column,
            func.count(),
            func.sum(case((judged.c.happened, 1), else_=0)),
            func.avg(judged.c.score),
        )
        .where(column.is_not(None), column != "")
        .group_by(judged.c.version, column)
    )
    return [GroupCounts(v, group, n, positives or 0, float(mean)) for v, group, n, positives, mean in rows]
