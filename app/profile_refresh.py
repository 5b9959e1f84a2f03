"""Stored profile scores kept current in the background, by one process of all those sharing the database.

After a promotion or a rollback of the profile's models, or an ingest that changed records, the stored scores
of many customers are no longer current and their profiles are scored on view (about 7 ms of CPU each) until
they are scored again. Every worker runs a refresher thread, but only the one holding the `profile-refresh`
lease (app/repositories/leases.py: a row in the service's database, so it holds across the workers of a host
and across replicas) does the work; the others only try for the lease at each check, and one of them takes
it over when the holder stops (it gives it up) or dies (its lease expires).

Every `interval` seconds each worker's refresher:
1. follows the registry for the profile's models (LoadedModels.follow), so after `clm promote` or
   `clm rollback` every worker serves the new version within one interval rather than at its next poll, and
   the holder scores with it (unless polling is off, CLM_RELOAD_INTERVAL_SECONDS=0: then only an admin
   reload changes what is served, and the refresher scores with that);
2. takes or renews the lease; the holder alone goes on:
3. counts the customers whose stored scores were not made from their current record by the versions its
   worker serves (clm_profile_refresh_backlog), and when there are any, scores them in batches with the very
   scorers its worker serves (following the registry again before each) and writes each batch in one
   transaction with a renewal of its lease.

Never a version other than the one served: each batch is scored by the scorers the worker serves at that
moment, and is dropped unwritten when the worker swapped a version while it was being scored (the pass then
starts over with the new one). Never a writer that lost its lease: the renewal in the batch's transaction
fails, and the batch is rolled back, when another process holds the lease (PostgreSQL locks the lease row
until the batch commits, so no process can take it over in between; SQLite has one writer at a time). So
two workers on different versions in the middle of a reload cannot both write: only the holder does, and
rows a holder wrote with a version that is no longer served are stale by their key (the profile never uses
them) and scored again at the next check.

Failures (the database or the registry down) are logged, counted (clm_profile_refresh_failures_total) and
retried with back-off; the thread never stops and never takes the worker down. Scoring runs in this thread,
off the event loop, at a lower CPU priority than the requests (CLM_PROFILE_REFRESH_NICE): with two workers
on two busy cores, a refresh at the same priority cost the profile views a third of their throughput and
doubled their p99; niced, they kept them (bench/refresh.py). XGBoost releases the GIL while it predicts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time

from app import metrics
from app.db import Database
from app.errors import ModelNotLoaded, NotFound, VersionRefusedError
from app.lease_holder import LeaseHolder
from app.prescore import count_stale, scored_rows, stale_batch
from app.repositories import profile_scores
from app.scoring.customers.profile import products_scorer_of
from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.scorer import Scorer
from model_registry.registry import RegistryUnavailable

log = logging.getLogger(__name__)

LEASE = "profile-refresh"
JITTER = 0.1  # each wait is the interval +/- 10 %, so the workers do not all ask for the lease at once
MAX_RETRY_DELAY = 60.0
Served = tuple[Scorer, Scorer | None]  # the churn scorer of the default line and its products scorer, if any


class ProfileRefresher:
    def __init__(
        self,
        database: Database,
        models: LoadedModels,
        *,
        interval: float,
        batch_size: int,
        lease_seconds: float,
        nice: int = 0,
        follow_registry: bool = True,
        holder: str | None = None,
    ) -> None:
        self.database = database
        self.models = models
        self.interval = interval
        self.batch_size = batch_size
        # Added to this thread's nice value (Linux: a thread's own), so that while the CPU is busy the requests
        # of every worker come first and the refresh takes what is left.
        self.nice = nice
        # False when the worker does not poll the registry (CLM_RELOAD_INTERVAL_SECONDS=0: only an admin reload
        # changes what it serves); the refresher then scores with what is served and never loads a version.
        self.follow_registry = follow_registry
        self.scored = 0  # customers this refresher stored
        self._registry_down = False
        self.lease = LeaseHolder(database, LEASE, lease_seconds, holder=holder, on_change=_count_holding)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clm-profile-refresher", daemon=True)
        self._thread.start()
        log.info(
            "profile refresher started: checking every %.1f s, %d customers per batch (holder %s)",
            self.interval,
            self.batch_size,
            self.lease.holder,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the batch in progress and give the lease up, so another process takes over at once."""
        self._stop.set()
        if self._thread is not None:
            # A batch is scored and written in a second or so; past the timeout, the thread is a daemon.
            self._thread.join(timeout)
            self._thread = None
        self.lease.give_up("stopping")

    def _run(self) -> None:
        self._lower_priority()
        failures = 0
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                again = self._check()
                failures = 0
                delay = 0.0 if again else self.interval * random.uniform(1 - JITTER, 1 + JITTER)
            except Exception as exc:  # the thread outlives any failure: the next check tries again
                failures += 1
                metrics.PROFILE_REFRESH_FAILURES.inc()
                delay = min(self.interval * 2 ** (failures - 1), MAX_RETRY_DELAY)
                log.warning(
                    "profile refresher: check failed (%d in a row), retrying in %.0f s: %s: %s",
                    failures,
                    delay,
                    type(exc).__name__,
                    str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "",
                    exc_info=failures == 1 and not _expected(exc),
                )

    def _check(self) -> bool:
        """One check: follow the registry, take or renew the lease, and as the holder score what is not current.
        True: check again at once (the served versions changed during a pass)."""
        served = self._follow()
        if served is None:
            self.lease.give_up("the profile's churn model is not loaded here")
            return False
        if not self.lease.take():
            return False
        churn, products = served
        products_version = products.version if products else None
        backlog = count_stale(self.database, churn.version, products_version)
        metrics.PROFILE_REFRESH_BACKLOG.set(backlog)
        if backlog == 0:
            return False
        return self._refresh(served, backlog)

    def _refresh(self, served: Served, backlog: int) -> bool:
        churn, products = served
        products_version = products.version if products else None
        versions = _versions(served)
        log.info(
            "profile refresh: %d customers' stored scores are not current; scoring them by %s",
            backlog,
            versions,
        )
        started = time.perf_counter()
        done, after = 0, ""
        while not self._stop.is_set():
            if not _same(self._follow(), served):
                log.info(
                    "profile refresh: %s no longer served after %d customers; starting over", versions, done
                )
                return True
            stale = stale_batch(self.database, churn.version, products_version, after, self.batch_size)
            if not stale:
                break
            rows = scored_rows(stale, churn, products)
            if not _same(self._served(), served):
                # The worker swapped a version while this batch was scored: drop it, start over with the new one.
                log.info(
                    "profile refresh: %s no longer served after %d customers; starting over", versions, done
                )
                return True
            with self.database.engine.begin() as connection:
                if not self.lease.renew(connection):
                    # Another process holds the lease now (this one stalled past its expiry), or this one gave
                    # it up (stopping): write nothing.
                    log.warning("profile refresh: lost the lease after %d customers scored; stopping", done)
                    return False
                profile_scores.save(connection, rows)
            done += len(rows)
            self.scored += len(rows)
            after = rows[-1]["customer_id"]
            metrics.PROFILE_REFRESHED.inc(len(rows))
            metrics.PROFILE_REFRESH_BACKLOG.set(max(backlog - done, 0))
        left = count_stale(self.database, churn.version, products_version)
        metrics.PROFILE_REFRESH_BACKLOG.set(left)
        log.info(
            "profile refresh: %d customers scored by %s in %.1f s; %d not current now",
            done,
            versions,
            time.perf_counter() - started,
            left,
            extra={"scored": done, "backlog": left},
        )
        return False

    def _lower_priority(self) -> None:
        if not self.nice:
            return
        try:
            # On Linux the nice value is each thread's own: the worker's other threads keep theirs.
            os.setpriority(
                os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + self.nice
            )
        except (AttributeError, OSError) as exc:  # no setpriority: it runs at the worker's priority
            log.warning("profile refresher: could not lower its priority: %s", exc)

    def _served(self) -> Served | None:
        """The scorers the profile uses in this worker now; None when it has no churn model to score with."""
        try:
            churn = self.models.for_line("churn", None)
        except (ModelNotLoaded, NotFound):
            return None
        products, _ = products_scorer_of(self.models, None)
        return churn, products

    def _follow(self) -> Served | None:
        """Swap in what the registry's aliases point to now for the profile's models, then what is served.

        Every worker does, holder or not, at every check: so after a promotion all of them serve the new
        version within one check, together with the refresh, instead of each at its own poll (a worker left on
        the old version scores its views on the spot once the new version's scores are stored). The registry
        unavailable, or a version refused, leaves what is served: the refresh goes on with it."""
        served = self._served()
        if served is None or not self.follow_registry:
            return served
        try:
            for scorer in served:
                if scorer is not None:
                    # A refused version is logged and counted where it was refused; the old one keeps serving.
                    with contextlib.suppress(VersionRefusedError):
                        self.models.follow(scorer.name)
        except RegistryUnavailable as exc:
            if not self._registry_down:
                log.warning("profile refresher: registry unavailable, going on with what is served: %s", exc)
            self._registry_down = True
        else:
            if self._registry_down:
                log.info("profile refresher: registry available again")
            self._registry_down = False
        return self._served()


def _count_holding(held: bool) -> None:
    # Changed by one, not set: two apps in one process (tests) share the gauge, each adds its own holding.
    if held:
        metrics.PROFILE_REFRESH_LEASE.inc()
    else:
        metrics.PROFILE_REFRESH_LEASE.dec()


def _same(now: Served | None, before: Served) -> bool:
    """The same scorer objects (a swap puts a new one in; compared by value, a Scorer would compare its bundle)."""
    return now is not None and now[0] is before[0] and now[1] is before[1]


def _versions(served: Served) -> str:
    churn, products = served
    text = f"{churn.name} version {churn.version}"
    if products is not None:
        text += f", {products.name} version {products.version}"
    return text


def _expected(exc: Exception) -> bool:
    """Failures that need no traceback in the log: the database or the registry unavailable."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return isinstance(exc, DBAPIError | PoolTimeout | RegistryUnavailable)
