"""A stored customer's profile scores, made by the batch job (`clm score customers`), with what made them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class StoredProfileScores(Base):
    __tablename__ = "profile_scores"

    customer_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    # What made the scores: the profile uses them only while all three still hold.
    features_updated_at: Mapped[datetime] = mapped_column(
        doc="The `updated_at` of the record that was scored."
    )
    churn_version: Mapped[int] = mapped_column(Integer)
    products_version: Mapped[int | None] = mapped_column(
        Integer, doc="NULL: scored with no product model served."
    )
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, doc="{'churn': result, 'offers': list or null}")
    scored_at: Mapped[datetime]
