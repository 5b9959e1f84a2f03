"""Drift of the served models: their sampled records against each version's reference profile.

`drift_of` computes it for one served model over a window (the route, `clm drift report`). The gauges are set
by one background job in one process of all those sharing the database: every worker runs a `DriftJob`
thread, but only the holder of the `drift` lease (app/repositories/leases.py, as the profile refresher's)
reads the window and computes, every CLM_DRIFT_INTERVAL seconds; the others only try for the lease. So the
cost (one read of the window per model, a few ms of numpy) is paid once per interval, never per request.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from app import metrics
from app.db import Database
from app.errors import ModelNotLoaded, NotFound
from app.lease_holder import LeaseHolder
from app.repositories.scored_records import sampled_window
from app.scoring.outcomes import judge_of, performance_of
from app.scoring.runtime.loaded import LoadedModels
from model_registry.bundle import ModelBundle
from model_registry.drift import REFERENCE_FILE, drift

log = logging.getLogger(__name__)

LEASE = "drift"


def reference_of(name: str, version: int, bundle: ModelBundle) -> dict[str, Any]:
    """A version's reference profile, or a 404 saying why there is none."""
    reference = bundle.documents.get(REFERENCE_FILE)
    if reference is None:
        raise NotFound(
            f"{name} version {version} has no reference profile (trained before drift was "
            "measured, or a kind that stores none): retrain it to measure drift"
        )
    return reference  # type: ignore[no-any-return]


def drift_of(
    database: Database,
    name: str,
    version: int,
    bundle: ModelBundle,
    since: datetime,
    until: datetime,
    *,
    watch: float,
    act: float,
) -> dict[str, Any]:
    """A version's drift over its sampled records scored in [since, until]."""
    reference = reference_of(name, version, bundle)
    with database.session() as session:
        window = sampled_window(session, name, version, since, until)
    figures = drift(reference, bundle.contract, window.records, window.scores, watch=watch, act=act)
    return {
        "model": name,
        "version": version,
        "since": since,
        "until": until,
        **figures,
    }


class DriftJob:
    def __init__(
        self,
        database: Database,
        models: LoadedModels,
        *,
        interval: float,
        window: timedelta,
        watch: float,
        act: float,
        holder: str | None = None,
    ) -> None:
        self.database = database
        self.models = models
        self.interval = interval
        self.window = window
        self.watch, self.act = watch, act
        # The lease outlives two missed runs, so one slow computation does not hand it over.
        self.lease = LeaseHolder(database, LEASE, 3 * interval, holder=holder)
        self.runs = 0  # computations this job made (as the holder)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clm-drift", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.lease.give_up("stopping")

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                self.run_once()
            except Exception as exc:  # the thread outlives any failure: the next run tries again
                log.warning("drift job: run failed, trying again in %.0f s: %s", delay, exc)

    def run_once(self) -> bool:
        """Take or renew the lease and, as its holder, set every served model's drift and realised-performance
        gauges. True: computed."""
        if not self.lease.take():
            return False
        until = datetime.now(UTC)
        for name in self.models.names:
            try:
                scorer = self.models.get(name)
                figures = drift_of(
                    self.database,
                    scorer.name,
                    scorer.version,
                    scorer.bundle,
                    until - self.window,
                    until,
                    watch=self.watch,
                    act=self.act,
                )
            except (ModelNotLoaded, NotFound):
                continue  # not loaded yet, or a version without a reference: no gauges for it
            _set_gauges(figures)
        for name in self.models.names:
            _set_realised(self.database, name, self.models)
        self.runs += 1
        return True


def _set_realised(database: Database, name: str, models: LoadedModels) -> None:
    """Each version's realised ROC AUC, as the performance route reports it, for a model outcomes judge."""
    try:
        judge = judge_of(name, models)
    except NotFound:
        return  # diagnosis and value: no outcome judges them
    _, versions = performance_of(database, name, judge)
    for figures in versions:
        version = str(figures["version"])
        metrics.JUDGED_RECORDS.labels(name, version).set(figures["records"])
        if figures["roc_auc"] is not None:
            metrics.REALISED_ROC_AUC.labels(name, version).set(figures["roc_auc"])


def _set_gauges(figures: dict[str, Any]) -> None:
    model, version = figures["model"], str(figures["version"])
    metrics.DRIFT_RECORDS.labels(model, version).set(figures["records"])
    if figures["records"] == 0:
        return
    metrics.DRIFT_SCORE_PSI.labels(model, version).set(figures["score"]["psi"])
    metrics.DRIFT_FIELDS_DRIFTING.labels(model, version).set(figures["share_drifting"])
    for field in figures["fields"]:
        metrics.DRIFT_FIELD_PSI.labels(model, version, field["field"]).set(field["psi"])
