"""A stored customer: the Telco record under its API field names, and when it last changed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow

CATEGORY = String(64)


class Customer(Base):
    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gender: Mapped[str | None] = mapped_column(CATEGORY)
    senior_citizen: Mapped[int | None] = mapped_column(Integer)
    partner: Mapped[str | None] = mapped_column(CATEGORY)
    dependents: Mapped[str | None] = mapped_column(CATEGORY)
    tenure: Mapped[int | None] = mapped_column(Integer, doc="Months with the company.")
    phone_service: Mapped[str | None] = mapped_column(CATEGORY)
    multiple_lines: Mapped[str | None] = mapped_column(CATEGORY)
    internet_service: Mapped[str | None] = mapped_column(CATEGORY)
    online_security: Mapped[str | None] = mapped_column(CATEGORY)
    online_backup: Mapped[str | None] = mapped_column(CATEGORY)
    device_protection: Mapped[str | None] = mapped_column(CATEGORY)
    tech_support: Mapped[str | None] = mapped_column(CATEGORY)
    streaming_tv: Mapped[str | None] = mapped_column(CATEGORY)
    streaming_movies: Mapped[str | None] = mapped_column(CATEGORY)
    contract: Mapped[str | None] = mapped_column(CATEGORY)
    paperless_billing: Mapped[str | None] = mapped_column(CATEGORY)
    payment_method: Mapped[str | None] = mapped_column(CATEGORY)
    monthly_charges: Mapped[float | None] = mapped_column(Float)
    total_charges: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, doc="When the stored fields last changed: the age of the features a score used."
    )


# Every stored field, in file order: the record id and the features a model may read.
FEATURE_FIELDS: tuple[str, ...] = tuple(
    c.key for c in Customer.__table__.columns if c.key not in {"customer_id", "created_at", "updated_at"}
)
RECORD_FIELDS: tuple[str, ...] = ("customer_id", *FEATURE_FIELDS)
