"""A lease: which process does a job that must run in one process only, across workers and replicas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True, doc="The job, e.g. 'profile-refresh'.")
    holder: Mapped[str] = mapped_column(String(200), doc="host:pid:instance of the process holding it.")
    expires_at: Mapped[datetime] = mapped_column(
        doc="The holder renews it before then; once past, any process may take it."
    )
