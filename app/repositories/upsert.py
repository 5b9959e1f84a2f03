"""INSERT ... ON CONFLICT for the two supported backends (both spell it the same way in SQLAlchemy)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session: Session, table: Table) -> Any:
    """A dialect insert with `on_conflict_do_nothing` / `on_conflict_do_update` and `.excluded`."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the customer store supports SQLite and PostgreSQL, not {dialect}")
