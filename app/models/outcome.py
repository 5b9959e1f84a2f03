"""What happened to a scored record: a lead converted, a customer churned, an offer was accepted (or not)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Outcome(Base):
    __tablename__ = "outcomes"
    # One fact per event, record and item: sending it again is a no-op, sending a different value corrects it.
    __table_args__ = (UniqueConstraint("event", "record_id", "item"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(128))
    # Not null, '' when the event has none: a NULL would make every row distinct under the unique constraint.
    item: Mapped[str] = mapped_column(
        String(64),
        default="",
        doc="The product (offer_accepted) or the lead line (lead_converted); '' otherwise.",
    )
    happened: Mapped[bool] = mapped_column(Boolean)
    observed_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
