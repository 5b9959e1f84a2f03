"""Leases: one holder at a time for a named job, taken and renewed atomically on SQLite and PostgreSQL.

A lease is a row (name, holder, expires_at). `take` is one INSERT ... ON CONFLICT DO UPDATE whose update only
happens when the caller holds the lease already or it has expired, so of processes racing for it exactly one
gets it: PostgreSQL locks the row and re-checks the condition on the row it finally updates; SQLite has one
writer at a time. Time is the database server's on PostgreSQL (replicas on several hosts then agree on it
whatever their own clocks say); SQLite is a local file, so every process using it shares this host's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, literal, or_, select, update

from app.models import Lease
from app.models.base import UtcDateTime
from app.repositories.upsert import insert_for

_LEASES = Lease.__table__


def _now(connection: Connection, later: float = 0.0) -> Any:
    """Now, or `later` seconds from now, as the database sees it."""
    if connection.dialect.name == "postgresql":
        # The server's clock, and the time of this statement (now() is the start of the transaction).
        return func.clock_timestamp() + timedelta(seconds=later)
    return literal(datetime.now(UTC) + timedelta(seconds=later), UtcDateTime())


def take(connection: Connection, name: str, holder: str, seconds: float) -> bool:
    """Take the lease, or renew it when `holder` has it: True when `holder` holds it for `seconds` from now."""
    now = _now(connection)
    statement = insert_for(connection, Lease).values(
        name=name, holder=holder, expires_at=_now(connection, seconds)
    )
    statement = statement.on_conflict_do_update(
        index_elements=[_LEASES.c.name],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
        where=or_(_LEASES.c.holder == holder, _LEASES.c.expires_at < now),
    )
    # RETURNING says whether a row was written (the condition held): rowcount is not reliable after an INSERT.
    return connection.execute(statement.returning(_LEASES.c.holder)).scalar_one_or_none() == holder


def renew(connection: Connection, name: str, holder: str, seconds: float) -> bool:
    """Extend the lease `holder` has (expired or not, as long as no other process took it): False when it does
    not hold it. In a transaction that also writes, it fences the writes: on PostgreSQL the lease row stays
    locked until the commit, so no process takes the lease over in between."""
    statement = (
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=_now(connection, seconds))
        .returning(Lease.name)
    )
    return connection.execute(statement).first() is not None


def release(connection: Connection, name: str, holder: str) -> bool:
    """Give the lease up (when `holder` has it), so another process takes it at once instead of at expiry."""
    statement = delete(Lease).where(Lease.name == name, Lease.holder == holder)
    return connection.execute(statement.returning(Lease.name)).first() is not None


def holder_of(connection: Connection, name: str) -> str | None:
    """Who holds the lease now; None when nobody does (never taken, released or expired)."""
    statement = select(_LEASES.c.holder).where(
        _LEASES.c.name == name, _LEASES.c.expires_at >= _now(connection)
    )
    return connection.execute(statement).scalar_one_or_none()
