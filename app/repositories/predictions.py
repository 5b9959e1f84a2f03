"""The prediction log: append served scores, and read them back joined with outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, and_, func, literal, select
from sqlalchemy.orm import Session

from app.models import Outcome, PredictionRow

_TABLE = PredictionRow.__table__
COLUMNS = tuple(column.name for column in _TABLE.columns)


def append(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows; a row already there (same id, written by an attempt whose commit was lost) is skipped.

    Sent to the driver as one executemany of plain tuples, converted by SQLAlchemy's own bind processors (so
    values are stored exactly as the ORM stores and reads them): the log is written in bulk all day long, and
    going through an ORM or Core insert spent ~20 us of Python per row on parameter handling, three times the
    database's own work (SQLite, 1,000-row batches).
    """
    if rows:
        statement, encode = _driver_insert(connection.dialect)
        connection.exec_driver_sql(statement, [encode(row) for row in rows])


def _driver_insert(dialect: Dialect) -> tuple[str, Any]:
    cached = _DRIVER_INSERTS.get(dialect.name)
    if cached is None:
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        statement = (
            f"INSERT INTO {PredictionRow.__tablename__} ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join([marker] * len(COLUMNS))}) ON CONFLICT DO NOTHING"
        )
        cached = _DRIVER_INSERTS[dialect.name] = (statement, _row_encoder(dialect))
    return cached


_DRIVER_INSERTS: dict[str, tuple[str, Any]] = {}


def _row_encoder(dialect: Dialect) -> Any:
    processors = [_TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in COLUMNS]

    def encode(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            row[name] if process is None or row[name] is None else process(row[name])
            for name, process in zip(COLUMNS, processors, strict=True)
        )

    return encode


def count(session: Session, model: str | None = None) -> int:
    statement = select(func.count()).select_from(PredictionRow)
    if model is not None:
        statement = statement.where(PredictionRow.model == model)
    return session.scalar(statement) or 0


@dataclass(frozen=True)
class ScoredOutcome:
    version: int
    score: float
    label: str | None
    item: str
    happened: bool


def scored_outcomes(
    session: Session, model: str, event: str, outcome_item: str | None
) -> list[ScoredOutcome]:
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
    rows = session.execute(
        select(joined.c.version, joined.c.score, joined.c.label, joined.c.item, joined.c.happened)
        .where(joined.c.latest == 1)
        .order_by(joined.c.version)
    )
    return [ScoredOutcome(r.version, r.score, r.label, r.item, bool(r.happened)) for r in rows]
