"""Scoring or reading a few records runs on the event loop; a batch, or any PostgreSQL call, in a worker thread."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import literal, select

from app.concurrency import INLINE_RECORDS, read_database, run_scoring
from app.db import Database
from app.request_reads import Read

# A read whose result says which thread made it.
WHERE_READ = Read(select(literal(1)), {}, lambda rows: threading.get_ident())


async def _threads(database: Database) -> dict[str, bool]:
    """Which work ran on the event loop's own thread."""
    loop = threading.get_ident()
    return {
        "few scored": await run_scoring(INLINE_RECORDS, threading.get_ident) == loop,
        "batch scored": await run_scoring(INLINE_RECORDS + 1, threading.get_ident) == loop,
        "few read": await read_database(database, INLINE_RECORDS, WHERE_READ) == loop,
        "batch read": await read_database(database, INLINE_RECORDS + 1, WHERE_READ) == loop,
    }


def test_a_few_records_are_scored_on_the_loop_and_a_batch_in_a_thread(database_url: str) -> None:
    on_loop = asyncio.run(_threads(Database(database_url)))
    assert on_loop["few scored"]
    assert not on_loop["batch scored"]


def test_sqlite_reads_a_few_records_on_the_loop_and_a_batch_in_a_thread_postgresql_all_on_the_loop(
    backend: str, database_url: str
) -> None:
    # PostgreSQL's reads wait on the socket in the loop (app/request_reads.py): no thread, never a blocked loop.
    on_loop = asyncio.run(_threads(Database(database_url)))
    assert on_loop["few read"]
    assert on_loop["batch read"] == (backend == "postgresql")
