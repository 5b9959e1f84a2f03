"""The database: engine and sessions, opened by the lifespan (or the CLI) and closed at shutdown.

`CLM_DATABASE_URL` picks the backend: SQLite by default (a file under var/), PostgreSQL in production
(`postgresql+psycopg://user@host/db`). The schema is Alembic's: `upgrade()` brings it to head at start.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).parent / "alembic.ini"
# Any constant works: every process upgrading the same PostgreSQL database takes this lock.
_MIGRATION_LOCK_ID = 7_310_2024


class Database:
    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.engine = _create_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

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

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back when it raises."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _create_engine(url: str) -> Engine:
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
        options["connect_args"] = {"connect_timeout": 5}
        options["pool_pre_ping"] = True  # a connection broken by an outage is replaced, not used
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
