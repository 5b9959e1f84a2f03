"""The database: engine and sessions, opened by the lifespan (or the CLI) and closed at shutdown.

`CLM_DATABASE_URL` picks the backend: SQLite by default (a file under var/), PostgreSQL in production
(`postgresql+psycopg://user@host/db`). The schema is Alembic's: `upgrade()` (`clm db upgrade`, a step of its
own before serving) brings it to head; the service never migrates, so it starts with its database down.

Requests reach the database through `run()`: its own threads (never the thread pool that scores batches and
answers /metrics, so a database that hangs cannot starve them) and a deadline, past which the request is a
503 while the stuck call finishes or fails on its own.
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

T = TypeVar("T")

log = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).parent / "alembic.ini"
# Any constant works: every process upgrading the same PostgreSQL database takes this lock.
_MIGRATION_LOCK_ID = 7_310_2024


POOL_SIZE, MAX_OVERFLOW = 5, 10  # SQLAlchemy's defaults, spelled out: the request threads match them


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

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back when it raises."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


def _create_engine(
    url: str, statement_timeout: float | None, pool_timeout: float, connect_timeout: int
) -> Engine:
    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        # No pre-ping: a connection to a local file does not go stale, so a ping per checkout is a query for
        # nothing (PostgreSQL below keeps it).
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        # Fail fast while the server is down instead of hanging a request thread or the log writer.
        connect_args: dict[str, Any] = {"connect_timeout": connect_timeout}
        if statement_timeout is not None:
            # Added to the URL's own `options` (a search_path, say): a keyword argument would replace them.
            given = parsed.query.get("options", "")
            given = given if isinstance(given, str) else " ".join(given)
            timeout = f"-c statement_timeout={round(statement_timeout * 1000)}"
            connect_args["options"] = f"{given} {timeout}".strip()
        options["connect_args"] = connect_args
        options["pool_pre_ping"] = True  # a connection broken by an outage is replaced, not used
        options["pool_size"], options["max_overflow"] = POOL_SIZE, MAX_OVERFLOW
        options["pool_timeout"] = pool_timeout
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


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
