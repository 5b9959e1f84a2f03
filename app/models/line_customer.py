"""A stored customer of a line other than the default churn line: its record as the line's model reads it.

The default line's customers (Telco) keep their typed table (`customers`); a line a team adds from its own
spec has fields no table could know in advance, so its records are kept as JSON under (line, customer_id),
holding only the ID and the fields the line's model reads (checked against its contract when loaded).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class LineCustomer(Base):
    __tablename__ = "line_customers"

    line: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, doc="When the stored record last changed: the age of the features a score used."
    )
