"""Scoring or reading a few records runs on the event loop; a batch, or any PostgreSQL call, in a worker thread."""

from __future__ import annotations

import asyncio
import threading

from app.concurrency import INLINE_RECORDS, run_database, run_scoring
from app.db import Database


async def _threads(database: Database) -> dict[str, bool]:
    """Which work ran on the event loop's own thread."""
    loop = threading.get_ident()
    return {
        "few scored": await run_scoring(INLINE_RECORDS, threading.get_ident) == loop,
        "batch scored": await run_scoring(INLINE_RECORDS + 1, threading.get_ident) == loop,
        "few read": await run_database(database, INLINE_RECORDS, threading.get_ident) == loop,
        "batch read": await run_database(database, INLINE_RECORDS + 1, threading.get_ident) == loop,
    }


def test_a_few_records_are_scored_on_the_loop_and_a_batch_in_a_thread(database_url: str) -> None:
    on_loop = asyncio.run(_threads(Database(database_url)))
    assert on_loop["few scored"]
    assert not on_loop["batch scored"]


def test_sqlite_reads_a_few_records_on_the_loop_and_postgresql_reads_always_in_a_thread(
    backend: str, database_url: str
) -> None:
    on_loop = asyncio.run(_threads(Database(database_url)))
    assert on_loop["few read"] == (backend == "sqlite")
    assert not on_loop["batch read"]
