"""Where a request's work runs: database reads in the thread pool, scoring on the event loop unless it is big.

A worker is one process per core, so CPU work in threads does not run in parallel, it only contends for the
GIL: each XGBoost call releases it and then waits to get it back from the other threads. Scoring a few records
costs less than handing it to a thread and back, so it runs on the event loop; a batch of more than
INLINE_RECORDS goes to the thread pool, so that one large request never holds the loop (and every other request
of the worker) for tens or hundreds of milliseconds. Database calls always go to the thread pool: a database
that hangs must never stop the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

INLINE_RECORDS = 16


async def run_scoring(records: int, work: Callable[[], T]) -> T:
    """Run `work`, the scoring of `records` records: inline for a few, in the thread pool for a batch."""
    if records <= INLINE_RECORDS:
        return work()
    return await run_in_threadpool(work)


async def run_database(work: Callable[[], T]) -> T:
    return await run_in_threadpool(work)
