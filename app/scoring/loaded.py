"""The loaded-model registry: scorers by model name, kept apart from discovering what can be loaded.

Loading follows "load the new version before unloading the old one": a version is downloaded, loaded and
checked against its stored example before it is swapped in under a lock; a failure leaves the old one serving.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from app import metrics
from app.errors import ModelNotLoaded, NotFound
from app.scoring.scorer import Scorer
from model_registry.registry import ModelRegistry

log = logging.getLogger(__name__)


class LoadedModels:
    def __init__(
        self,
        registry: ModelRegistry,
        names: list[str],
        alias: str,
        *,
        threads: int,
        exact_contributions: bool,
    ) -> None:
        self.registry = registry
        self.names = list(names)
        self.alias = alias
        self.threads = threads
        self.exact_contributions = exact_contributions
        self._scorers: dict[str, Scorer] = {}
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return all(name in self._scorers for name in self.names)

    def missing(self) -> list[str]:
        return [name for name in self.names if name not in self._scorers]

    def get(self, name: str) -> Scorer:
        scorer = self._scorers.get(name)
        if scorer is None:
            raise ModelNotLoaded(f"no version of {name} is loaded yet; see /readyz")
        return scorer

    def all(self) -> list[Scorer]:
        return [self._scorers[name] for name in self.names if name in self._scorers]

    def load_all(self) -> None:
        """Load every configured model's alias; one that fails is logged and retried on the next reload."""
        for name in self.names:
            try:
                self.reload(name)
            except Exception:
                log.exception("could not load %s@%s", name, self.alias)

    def reload(self, name: str) -> Scorer:
        """Load what the alias points to now and swap it in; the current scorer when it is already that one."""
        if name not in self.names:
            raise NotFound(f"{name} is not served here; served: {', '.join(self.names)}")
        ref = self.registry.resolve(name, self.alias)
        if ref is None:
            raise ModelNotLoaded(f"{name} has no {self.alias} version in the registry")
        current = self._scorers.get(name)
        if current is not None and current.version == ref.version:
            return current
        try:
            bundle = self.registry.load(name, ref.version, nthread=self.threads)
            scorer = Scorer(
                name=name,
                version=ref.version,
                alias=self.alias,
                loaded_at=datetime.now(UTC),
                bundle=bundle,
                exact_contributions=self.exact_contributions,
            )
            scorer.check()
        except Exception:
            metrics.MODEL_LOAD_FAILURES.labels(name, str(ref.version)).inc()
            raise
        with self._lock:
            previous = self._scorers.get(name)
            self._scorers[name] = scorer
        if previous is not None:
            metrics.MODEL_INFO.remove(name, str(previous.version), self.alias)
        metrics.MODEL_INFO.labels(name, str(scorer.version), self.alias).set(1)
        log.info(
            "serving %s version %d (%s)",
            name,
            scorer.version,
            self.alias,
            extra={"model": name, "version": scorer.version},
        )
        return scorer
