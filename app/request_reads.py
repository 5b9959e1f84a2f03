"""The reads of the request path (the profile, scoring by id): one SELECT each, written once as SQLAlchemy Core.

On SQLite they run through the engine like every other query. On PostgreSQL they run on the event loop through
psycopg's async connections, one round trip each, without SQLAlchemy's execution layer. Per read of the
profile's row (a customer joined to its churn outcome and stored scores), measured on this machine: SQLAlchemy's
asyncio engine 1.0-1.2 ms of CPU, its sync engine 0.57 ms plus a hop to a thread and back, a psycopg async
connection 0.4-0.5 ms. At 8 profiles in flight on one worker, that is most of what separated PostgreSQL (440
req/s, p99 51 ms) from SQLite (1,100 req/s, p99 11 ms). The statement is still SQLAlchemy's: compiled once by its
PostgreSQL dialect (an IN list expanded per call by SQLAlchemy), its rows converted by the columns' own types,
so a read gives the rows the engine would.

A read costs one round trip: autocommit (no BEGIN, no ROLLBACK), no ping before it, the statement prepared by
psycopg after its fifth use on a connection. A connection the server ended (a restart, an idle timeout) fails
its read, which is tried once more on a new one; a server that hangs stalls the requests waiting on it, never the
loop, and past the deadline the request is a 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus
from sqlalchemy import URL, Connection, Select
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.compiler import SQLCompiler

from app.errors import DatabaseUnavailable

T = TypeVar("T")

_DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
# psycopg's errors of an unreachable or lost server: a 503 to retry, not a bug.
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)


@dataclass(frozen=True)
class Read(Generic[T]):
    """One SELECT of the request path: the statement, its parameters, and what its rows (tuples) make."""

    statement: Select[Any]
    params: dict[str, Any]
    result: Callable[[Sequence[Sequence[Any]]], T]


def read_on(connection: Connection, read: Read[T]) -> T:
    """`read` through an engine's connection (SQLite's request path; jobs and tests on either backend)."""
    return read.result(connection.execute(read.statement, read.params).all())


# The columns whose values the SQLAlchemy type converts (a UTC timestamp, say), by position; most need nothing.
Converters = tuple[tuple[int, Callable[[Any], Any]], ...]


@dataclass
class _Compiled:
    compiled: SQLCompiler
    converters: Converters | None = None  # made from the first result's column types


class PostgresReads:
    """Reads on the event loop through psycopg's async connections (_Connections), opened as reads need them."""

    def __init__(
        self, url: URL, connect_args: dict[str, Any], *, size: int, pool_timeout: float, deadline: float
    ) -> None:
        # The URL's query (options, application_name, sslmode...) as the engine passes it, then connect_args,
        # which already fold the URL's `options` in with their own.
        parameters = {k: v if isinstance(v, str) else " ".join(v) for k, v in url.query.items()}
        parameters.update(connect_args)
        conninfo = make_conninfo(
            host=url.host,
            port=url.port,
            dbname=url.database,
            user=url.username,
            password=url.password,
            **parameters,
        )
        self._connections = _Connections(conninfo, size, pool_timeout)
        self._deadline = deadline
        self._compiled: dict[Select[Any], _Compiled] = {}

    async def read(self, read: Read[T]) -> T:
        try:
            return await asyncio.wait_for(self._read(read), self._deadline)
        except TimeoutError:
            raise DatabaseUnavailable(
                f"the database did not answer within {self._deadline:g} s; retry shortly"
            ) from None
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable("the database is unavailable; retry shortly") from exc

    async def _read(self, read: Read[T]) -> T:
        compiled = self._compile(read.statement)
        state = compiled.compiled.construct_expanded_state(read.params)
        rows, description = await self._fetch(state.statement, state.parameters, retry=True)
        if compiled.converters is None:
            compiled.converters = _converters(read.statement, description)
        converters = compiled.converters
        return read.result([_converted(row, converters) for row in rows] if converters else rows)

    async def _fetch(
        self, statement: str, parameters: Any, retry: bool
    ) -> tuple[list[Any], list[psycopg.Column]]:
        async with self._connections.connection() as connection:
            try:
                cursor = await connection.execute(statement, parameters)
                return await cursor.fetchall(), cursor.description or []
            except psycopg.OperationalError:
                if not retry or not connection.broken:
                    raise
        # The idle connections were likely ended too (a restart ends them all): the retry opens a new one.
        await self._connections.close_idle()
        return await self._fetch(statement, parameters, retry=False)

    def _compile(self, statement: Select[Any]) -> _Compiled:
        # Statements are module constants: compiled once each (an IN list's expansion is per call).
        found = self._compiled.get(statement)
        if found is None:
            found = self._compiled[statement] = _Compiled(statement.compile(dialect=_DIALECT))
        return found

    async def close(self) -> None:
        await self._connections.close_idle()


class _Connections:
    """At most `size` connections in use at once; one returned idle is reused, else one is opened there and then.

    What a request-path pool needs, and no more: the connections opened under load are kept (one closed on
    return and opened again on the next read costs a server process every few requests: SQLAlchemy's default
    pool of 5 at 8 profiles in flight gave a p99 of 250-490 ms), and a server back from an outage is used by the
    very next read (psycopg_pool reconnects in the background with a growing back-off, so reads failed for
    seconds after the server was back). A connection that comes back broken, or in the middle of a statement
    (its read was cancelled at the deadline), is closed, never reused."""

    def __init__(self, conninfo: str, size: int, timeout: float) -> None:
        self._conninfo, self._timeout = conninfo, timeout
        self._idle: list[AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        try:
            await asyncio.wait_for(self._slots.acquire(), self._timeout)
        except TimeoutError:
            raise DatabaseUnavailable(
                f"no database connection was free within {self._timeout:g} s; retry shortly"
            ) from None
        try:
            connection = self._idle.pop() if self._idle else await self._open()
            try:
                yield connection
            finally:
                if connection.broken or connection.info.transaction_status != TransactionStatus.IDLE:
                    await connection.close()
                else:
                    self._idle.append(connection)
        finally:
            self._slots.release()

    async def _open(self) -> AsyncConnection[Any]:
        return await AsyncConnection.connect(self._conninfo, autocommit=True)

    async def close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


def _converters(statement: Select[Any], description: Sequence[psycopg.Column]) -> Converters:
    """Each column's conversion by its SQLAlchemy type, as the engine applies it; the others keep the driver's."""
    processors = (
        column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, described.type_code)
        for column, described in zip(statement.selected_columns, description, strict=True)
    )
    return tuple((index, convert) for index, convert in enumerate(processors) if convert is not None)


def _converted(row: Sequence[Any], converters: Converters) -> list[Any]:
    values = list(row)
    for index, convert in converters:
        values[index] = convert(values[index])
    return values
