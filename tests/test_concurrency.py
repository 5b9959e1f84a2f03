"""Scoring a few records runs on the event loop; a batch goes to a worker thread so the loop stays free."""

from __future__ import annotations

import asyncio
import threading

from app.concurrency import INLINE_RECORDS, run_database, run_scoring


async def _threads() -> tuple[int, int, int, int]:
    return (
        threading.get_ident(),
        await run_scoring(INLINE_RECORDS, threading.get_ident),
        await run_scoring(INLINE_RECORDS + 1, threading.get_ident),
        await run_database(threading.get_ident),
    )


def test_a_few_records_score_on_the_loop_and_a_batch_or_a_database_read_in_a_thread() -> None:
    loop, few, batch, database = asyncio.run(_threads())
    assert few == loop
    assert batch != loop
    assert database != loop
