"""A scored record kept in full: the fields as the model read them, for drift and for retraining."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ScoredRecord(Base):
    __tablename__ = "scored_records"
    # Drift: a model's sampled records of a window. Retraining reads a model's records once, joined with
    # outcomes by the outcomes' own index: an index by record here would cost every write a third more
    # (bench/prediction_log.py) for a query run by hand.
    __table_args__ = (Index(None, "model", "served_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    served_at: Mapped[datetime]
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    record_id: Mapped[str | None] = mapped_column(String(128))
    sampled: Mapped[bool] = mapped_column(
        Boolean,
        doc="Drawn at CLM_DRIFT_SAMPLE_RATE from all traffic (drift reads these only); false: kept because it "
        "was a stored customer scored by id (retraining reads every row with an id).",
    )
    score: Mapped[float] = mapped_column(Float)
    record: Mapped[str] = mapped_column(Text, doc="The record as scored, JSON: the fields the model read.")
