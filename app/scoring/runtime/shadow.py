"""Shadow scoring: a share of requests is scored again by the challenger after the response has gone out.

Works for any use-case service of the shape `service(scorer, records, ...) -> list[dict]` (one result per
record, in order): the route hands over the champion's results and a callable that runs the same service with
another scorer; a `Compare` function says how two results for one record differ. The challenger's results are
never returned to anyone: they only feed the agreement metrics, labelled by model and both versions.

The work runs as a FastAPI background task (in the threadpool, after the response is sent), and at most
`shadow_max_pending` run at once per worker; a sampled request beyond that is skipped and counted, so a slow
challenger can never build a backlog or slow callers down. The slot is taken inside the task itself: a task
that never runs (the client hung up before the response went out) holds nothing.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app import metrics
from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.scorer import Scorer

if TYPE_CHECKING:  # the use cases import `compare_fields` from here, and run without FastAPI in bulk jobs
    from fastapi import BackgroundTasks

log = logging.getLogger(__name__)

Result = dict[str, Any]
# (champion's result, challenger's result) for one record -> (|score differences|, whether the label changed)
Compare = Callable[[Result, Result], tuple[list[float], bool]]
# Runs the use case's service with the given scorer on the request's records.
Rescore = Callable[[Scorer], list[Result]]


def compare_fields(score: str, label: str) -> Compare:
    """Compare for results with one score and one label per record: churn (churn_probability, risk_level),
    leads (conversion_probability, grade), diagnosis (effect_probability, ...)."""

    def compare(champion: Result, challenger: Result) -> tuple[list[float], bool]:
        return [abs(float(champion[score]) - float(challenger[score]))], champion[label] != challenger[label]

    return compare


class ShadowScoring:
    def __init__(self, models: LoadedModels, *, enabled: bool, share: float, max_pending: int) -> None:
        self.models = models
        self.enabled = enabled
        self.share = share
        self._slots = threading.BoundedSemaphore(max_pending)

    def after_response(
        self,
        background: BackgroundTasks,
        champion: Scorer,
        results: list[Result],
        rescore: Rescore,
        compare: Compare,
    ) -> None:
        """Maybe schedule the challenger on this request; costs the caller a random draw and a dict lookup."""
        if not self.enabled or random.random() >= self.share:
            return
        challenger = self.models.challenger(champion.name)
        if challenger is None or challenger.version == champion.version:
            return
        background.add_task(self._compare, champion, challenger, results, rescore, compare)

    def _compare(
        self, champion: Scorer, challenger: Scorer, results: list[Result], rescore: Rescore, compare: Compare
    ) -> None:
        if not self._slots.acquire(blocking=False):
            metrics.SHADOW_SKIPPED.labels(champion.name, "busy").inc()
            return
        try:
            shadow_results = rescore(challenger)
            labels = (champion.name, str(champion.version), str(challenger.version))
            differences = metrics.SHADOW_SCORE_DIFFERENCE.labels(*labels)
            changes = 0
            for ours, theirs in zip(results, shadow_results, strict=True):
                diffs, changed = compare(ours, theirs)
                for difference in diffs:
                    differences.observe(difference)
                changes += changed
            metrics.SHADOW_LABEL_CHANGES.labels(*labels).inc(changes)
            metrics.SHADOW_RECORDS.labels(*labels).inc(len(results))
        except Exception:
            # The caller has its answer already; a failing challenger is only worth a log line and a count.
            log.exception("shadow scoring with %s version %d failed", challenger.name, challenger.version)
            metrics.SHADOW_SKIPPED.labels(champion.name, "failed").inc()
        finally:
            self._slots.release()
