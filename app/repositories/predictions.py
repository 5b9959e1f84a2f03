"""The prediction log: append served scores, and read them back joined with outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, literal, select
from sqlalchemy.orm import Session

from app.models import Outcome, PredictionRow
from app.repositories.upsert import insert_for


def append(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows; a row already there (same id, written by an attempt whose commit was lost) is skipped."""
    if rows:
        session.execute(insert_for(session, PredictionRow).on_conflict_do_nothing(), rows)


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
