"""INSERT ... ON CONFLICT for the two supported backends (both spell it the same way in SQLAlchemy)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import Base


def insert_for(bind: Session | Connection, entity: type[Base]) -> Any:
    """A dialect insert with `on_conflict_do_nothing` / `on_conflict_do_update` and `.excluded`."""
    dialect = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    if dialect == "postgresql":
        return postgresql.insert(entity)
    if dialect == "sqlite":
        return sqlite.insert(entity)
    raise NotImplementedError(f"the customer store supports SQLite and PostgreSQL, not {dialect}")
