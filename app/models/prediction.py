"""One score served: which route and model version produced it, for which record, and when."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class PredictionRow(Base):
    __tablename__ = "prediction_log"
    __table_args__ = (
        # The performance query: a model's scores joined with outcomes by record (and product); and a record's
        # newest scores by a model (the profile's trend), found without sorting all of them.
        Index(None, "model", "record_id", "item", "served_at"),
        Index(None, "served_at"),
    )

    # Made when the score is served, so a batch written twice (a retry after a lost commit) stays one row each.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    served_at: Mapped[datetime]
    route: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    record_id: Mapped[str | None] = mapped_column(String(128))
    item: Mapped[str] = mapped_column(
        String(64),
        default="",
        doc="What was scored for the record when a model scores several (a product); ''.",
    )
    score: Mapped[float] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(
        String(32), doc="The grade or risk level served with the score."
    )
    request_id: Mapped[str] = mapped_column(String(128))
