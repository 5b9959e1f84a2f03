"""Scored records kept in full: what drift reads (the sampled ones of a window)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ScoredRecord

# The order of a row's values as the prediction log builds them (app/prediction_log.py).
RECORD_COLUMNS = ("id", "served_at", "model", "version", "record_id", "sampled", "score", "record")
# Drift over more than this many sampled records reads the newest ones: PSI over 10 bins is stable long before.
MAX_WINDOW_RECORDS = 50_000


@dataclass(frozen=True)
class Window:
    """The sampled records of one model version scored in [since, until]."""

    records: list[dict[str, Any]]
    scores: list[float]


def sampled_window(session: Session, model: str, version: int, since: datetime, until: datetime) -> Window:
    rows = session.execute(
        select(ScoredRecord.record, ScoredRecord.score)
        .where(
            ScoredRecord.model == model,
            ScoredRecord.version == version,
            ScoredRecord.sampled.is_(True),
            ScoredRecord.served_at >= since,
            ScoredRecord.served_at <= until,
        )
        .order_by(ScoredRecord.served_at.desc())
        .limit(MAX_WINDOW_RECORDS)
    ).all()
    return Window([json.loads(record) for record, _ in rows], [score for _, score in rows])
