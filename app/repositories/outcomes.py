"""Outcomes: one row per (event, record, item); the same fact twice is one row, a different value corrects it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from app.models import Outcome
from app.models.base import utcnow
from app.repositories.upsert import insert_for


@dataclass(frozen=True)
class OutcomeIn:
    event: str
    record_id: str
    item: str
    happened: bool
    observed_at: datetime | None  # None: now for a new fact, the stored time for a repeated one


@dataclass(frozen=True)
class RecordCounts:
    recorded: int
    unchanged: int
    corrected: int


def record(session: Session, outcomes: list[OutcomeIn]) -> RecordCounts:
    """Record facts idempotently. Later entries of the same key in one call win, as if sent one after another."""
    latest = {(o.event, o.record_id, o.item): o for o in outcomes}
    stored = {
        (row.event, row.record_id, row.item): row
        for row in session.scalars(
            select(Outcome).where(tuple_(Outcome.event, Outcome.record_id, Outcome.item).in_(list(latest)))
        )
    }
    now = utcnow()
    new = []
    unchanged = corrected = 0
    for key, outcome in latest.items():
        row = stored.get(key)
        if row is None:
            new.append(
                {
                    "event": outcome.event,
                    "record_id": outcome.record_id,
                    "item": outcome.item,
                    "happened": outcome.happened,
                    "observed_at": outcome.observed_at or now,
                    "recorded_at": now,
                    "updated_at": now,
                }
            )
        elif row.happened == outcome.happened and outcome.observed_at in (None, row.observed_at):
            unchanged += 1
        else:
            row.happened = outcome.happened
            row.observed_at = outcome.observed_at or row.observed_at
            row.updated_at = now
            corrected += 1
    recorded = 0
    if new:
        # A concurrent call may have inserted the same fact since the read above: it is kept, not duplicated.
        statement = insert_for(session, Outcome).on_conflict_do_nothing().returning(Outcome.id)
        recorded = len(session.scalars(statement, new).all())
        unchanged += len(new) - recorded
    return RecordCounts(recorded=recorded, unchanged=unchanged, corrected=corrected)
