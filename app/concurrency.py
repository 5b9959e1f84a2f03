"""Where a request's work runs: on the event loop when it is small, in the thread pool when it is big or may hang.

A worker is one process per core, so CPU work in threads does not run in parallel, it only contends for the
GIL: each XGBoost call releases it and then waits to get it back from the other threads. Scoring a few records
costs less than handing it to a thread and back, so it runs on the event loop; a batch of more than
INLINE_RECORDS goes to the thread pool, so that one large request never holds the loop (and every other request
of the worker) for tens or hundreds of milliseconds.

Database reads follow the same rule on SQLite: a file on the local disk, read in WAL mode, never waits for the
writer (the prediction log, an ingest), and reading a few rows costs a fraction of a millisecond, less than the
hop to a thread and back (the profile benchmark: 680-1,160 -> 1,120-1,500 req/s, p99 20-42 -> 16-24 ms at
concurrency 8). PostgreSQL is reached over the network, and a server that hangs must never stop the loop: its
reads run on the loop through psycopg's async pool, which waits on the socket, not for it (Database.read).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from app.db import Database
from app.request_reads import Read

T = TypeVar("T")

INLINE_RECORDS = 16


async def run_scoring(records: int, work: Callable[[], T]) -> T:
    """Run `work`, the scoring of `records` records: inline for a few, in the thread pool for a batch."""
    if records <= INLINE_RECORDS:
        return work()
    return await run_in_threadpool(work)


async def read_database(database: Database, records: int, read: Read[T]) -> T:
    """Run `read`, a read of `records` records: on PostgreSQL on the loop's async connections; on SQLite inline
    for a few, else on the database's threads."""
    if database.dialect != "sqlite":
        return await database.read(read)
    if records <= INLINE_RECORDS:
        return database.read_here(read)
    return await database.run(partial(database.read_here, read))
