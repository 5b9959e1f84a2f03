"""The registry watcher: a daemon thread in each worker process that polls the registry on an interval.

A thread rather than an event-loop task: a poll downloads artifacts and loads boosters (blocking I/O and CPU
work), and it must go on while requests are scored. Each worker runs its own watcher, so every worker follows
an alias move within one interval; a little jitter keeps many workers from hitting the registry in step.
"""

from __future__ import annotations

import logging
import random
import threading

from app.scoring.runtime.loaded import LoadedModels

log = logging.getLogger(__name__)

JITTER = 0.1  # each wait is the interval +/- 10 %


class RegistryWatcher:
    def __init__(self, models: LoadedModels, interval_seconds: float) -> None:
        self.models = models
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling; an interval of 0 means no polling (reloads come from the admin route only)."""
        if self.interval <= 0:
            log.info("registry polling is off: POST /v1/admin/models/{name}/reload changes what is served")
            return
        self._thread = threading.Thread(target=self._run, name="clm-registry-watcher", daemon=True)
        self._thread.start()
        log.info("polling the registry every %.1f s for alias moves", self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # A poll stuck on an unreachable registry must not hold up shutdown; the thread is a daemon.
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval * random.uniform(1 - JITTER, 1 + JITTER)):
            self.models.poll()
