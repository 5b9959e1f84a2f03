"""The database: engine and sessions, opened by the lifespan (or the CLI) and closed at shutdown.

`CLM_DATABASE_URL` picks the backend: SQLite by default (a file under var/), PostgreSQL in production
(`postgresql+psycopg://user@host/db`). The schema is Alembic's: `upgrade()` (`clm db upgrade`, a step of its
own before serving) brings it to head; the service never migrates, so it starts with its database down.

Requests reach the database in one of two ways, each with a deadline past which the request is a 503 (a
database that hangs stalls the calls that need it, nothing else):
- `read()`, the reads of the request path (the profile, scoring by id) on PostgreSQL: on the event loop
  through psycopg's async pool, one round trip and no thread (app/request_reads.py);
- `run()`, everything else (writes, admin queries, SQLite's larger reads): on the database's own threads,
  never the thread pool that scores batches and answers /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from app.errors import DatabaseUnavailable
from app.request_reads import PostgresReads, Read, read_on

T = TypeVar("T")

log = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).parent / "alembic.ini"
# Any constant works: every process upgrading the same PostgreSQL database takes this lock.
_MIGRATION_LOCK_ID = 7_310_2024


# Connections kept open, and opened beyond them under a burst. A connection past POOL_SIZE is closed when it is
# returned, so POOL_SIZE must cover the usual concurrency: with SQLAlchemy's default of 5, 8 concurrent profiles
# opened and closed a PostgreSQL connection (a server process) every few requests, and their p99 was 250-490 ms.
POOL_SIZE, MAX_OVERFLOW = 10, 10


class Database:
    def __init__(
        self,
        url: str,
        *,
        statement_timeout: float | None = None,
        pool_timeout: float = 5.0,
        connect_timeout: int = 5,
    ) -> None:
        """`statement_timeout` (seconds; PostgreSQL) ends a statement on the server; None leaves the server's.
        `pool_timeout` bounds the wait for a pooled connection, `connect_timeout` a new connection."""
        self.url = make_url(url)
        self.engine = _create_engine(url, statement_timeout, pool_timeout, connect_timeout)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # The longest a request waits for the database: a connection, then its statement.
        self.deadline = pool_timeout + connect_timeout + (statement_timeout or 30.0)
        self._threads: ThreadPoolExecutor | None = None
        self._postgres_reads: PostgresReads | None = None
        if self.dialect == "postgresql":
            self._postgres_reads = PostgresReads(
                self.url,
                _postgresql_connect_args(self.url, statement_timeout, connect_timeout),
                size=POOL_SIZE,
                pool_timeout=pool_timeout,
                deadline=self.deadline,
            )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there already)."""
        config = Config(str(ALEMBIC_INI))
        with self.engine.begin() as connection:
            # Several workers or replicas starting at once migrate one after the other, never side by side.
            if self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            elif self.dialect == "sqlite":
                connection.exec_driver_sql("BEGIN EXCLUSIVE")  # the DDL below then runs in this transaction
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @cached_property
    def _head(self) -> str | None:
        return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()

    def state(self) -> tuple[str, str]:
        """("ok", ...) when the database answers and its schema is the newest migration; else ("unavailable",
        why) or ("not_migrated", what to do)."""
        try:
            with self.engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
        except (DBAPIError, PoolTimeout) as exc:
            cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
            return "unavailable", f"{type(cause).__name__}: {str(cause).strip().splitlines()[0][:200]}"
        if current != self._head:
            return (
                "not_migrated",
                f"schema at {current or 'no migration'}, not {self._head}: run `clm db upgrade`",
            )
        return "ok", f"schema at {current}"

    async def run(self, work: Callable[[], T], deadline: float | None = None) -> T:
        """`work` (a call that uses the database) on the database's own threads, within the deadline: past it,
        DatabaseUnavailable (a 503); the call itself ends when the database answers or its timeouts fire."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(POOL_SIZE + MAX_OVERFLOW, thread_name_prefix="clm-db")
        future = self._threads.submit(work)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), deadline or self.deadline)
        except TimeoutError:
            future.cancel()  # still queued behind stuck calls: never run
            raise DatabaseUnavailable(
                f"the database did not answer within {deadline or self.deadline:g} s; retry shortly"
            ) from None

    async def read(self, read: Read[T]) -> T:
        """A read of the request path on PostgreSQL, on the event loop (app/request_reads.py says how)."""
        if self._postgres_reads is None:
            raise RuntimeError(f"read() is for PostgreSQL; on {self.dialect} use read_here()")
        return await self._postgres_reads.read(read)

    def read_here(self, read: Read[T]) -> T:
        """A read of the request path through the engine, in the calling thread."""
        with self.engine.connect() as connection:
            return read_on(connection, read)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back when it raises."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()

    async def aclose(self) -> None:
        """dispose(), and the event loop's connections closed on that loop (the service's shutdown)."""
        if self._postgres_reads is not None:
            await self._postgres_reads.close()
        self.dispose()


def _create_engine(
    url: str, statement_timeout: float | None, pool_timeout: float, connect_timeout: int
) -> Engine:
    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        options = _postgresql_options(parsed, statement_timeout, pool_timeout, connect_timeout)
        options["pool_pre_ping"] = True  # a connection broken by an outage is replaced, not used
    elif parsed.get_backend_name() == "sqlite":
        # No pre-ping: a connection to a local file does not go stale, so a ping per checkout is a query for
        # nothing (PostgreSQL below keeps it).
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"check_same_thread": False}
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _postgresql_options(
    url: Any, statement_timeout: float | None, pool_timeout: float, connect_timeout: int
) -> dict[str, Any]:
    return {
        "connect_args": _postgresql_connect_args(url, statement_timeout, connect_timeout),
        "pool_size": POOL_SIZE,
        "max_overflow": MAX_OVERFLOW,
        "pool_timeout": pool_timeout,
    }


def _postgresql_connect_args(
    url: Any, statement_timeout: float | None, connect_timeout: int
) -> dict[str, Any]:
    # Fail fast while the server is down instead of hanging a request or the log writer.
    connect_args: dict[str, Any] = {"connect_timeout": connect_timeout}
    if statement_timeout is not None:
        # Added to the URL's own `options` (a search_path, say): a keyword argument would replace them.
        given = url.query.get("options", "")
        given = given if isinstance(given, str) else " ".join(given)
        timeout = f"-c statement_timeout={round(statement_timeout * 1000)}"
        connect_args["options"] = f"{given} {timeout}".strip()
    return connect_args


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL: readers (scoring by id, profiles) never wait for the prediction-log writer; a busy writer is retried
    # for 5 s before SQLite reports "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """WAL is a property of the database file: set once, every later connection finds it. Switching needs the
    file to itself, and SQLite answers "database is locked" at once, busy timeout or not, while another
    connection holds it (workers starting together, one of them migrating): so retry for a while."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")  # an in-memory database answers "memory": fine too
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
