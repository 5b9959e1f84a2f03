"""The loaded-model registry: scorers by model name and alias, kept apart from discovering what can be loaded.

Loading follows "load the new version before unloading the old one": a version is downloaded, loaded and
checked against its stored example before it is swapped in; a failure leaves the old one serving.

Every worker process holds its own LoadedModels and polls the registry itself (app/scoring/runtime/watcher.py), so all
workers converge on what the aliases point to within one poll interval, with no coordination between them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from app import metrics
from app.errors import ModelNotLoaded, NotFound, RegistryUnreachableError, VersionRefusedError
from app.scoring.runtime.scorer import Scorer
from model_registry.registry import CHALLENGER, ModelRegistry, RegistryUnavailable, VersionRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """A version this worker would not serve, and why. Polls skip it; an explicit reload tries it again."""

    version: int
    alias: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Reload:
    scorer: Scorer
    previous_version: int | None


class LoadedModels:
    def __init__(
        self,
        registry: ModelRegistry,
        names: list[str],
        alias: str,
        *,
        threads: int,
        exact_contributions: bool,
        load_challengers: bool = False,
    ) -> None:
        self.registry = registry
        self.names = list(names)
        self.alias = alias
        self.threads = threads
        self.exact_contributions = exact_contributions
        self.load_challengers = load_challengers
        # Readers take no lock: a request reads its scorer once (one dict lookup, atomic) and keeps that
        # object for the whole request, so a swap never changes the version under a request being scored.
        self._scorers: dict[tuple[str, str], Scorer] = {}
        self._known: dict[tuple[str, str], VersionRef | None] = {}
        self._refused: dict[tuple[str, int], Refusal] = {}
        # (use case, line) -> the model serving it, from each loaded version's own metadata: the default line of
        # a use case is line None. A line is known once its model has loaded.
        self._lines: dict[tuple[str, str | None], str] = {}
        # Writers (the poller and admin reloads) take turns, so a version is never loaded twice at once.
        self._sync_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return all((name, self.alias) in self._scorers for name in self.names)

    def missing(self) -> list[str]:
        return [name for name in self.names if (name, self.alias) not in self._scorers]

    def get(self, name: str) -> Scorer:
        scorer = self._scorers.get((name, self.alias))
        if scorer is None:
            raise ModelNotLoaded(f"no version of {name} is loaded yet; see /readyz")
        return scorer

    def for_line(self, use_case: str, line: str | None) -> Scorer:
        """The scorer of a use case's line (None: the default line). An unknown line is a 404 naming the lines
        served; a line whose model is configured but not loaded yet is a 503."""
        name = self._lines.get((use_case, line))
        if name is not None:
            return self.get(name)
        not_loaded = self.missing()
        if not_loaded:
            raise ModelNotLoaded(
                f"{_line_label(use_case, line)} is not loaded; still loading: {', '.join(not_loaded)} (see /readyz)"
            )
        lines = self.lines(use_case)
        served = ", ".join(str(known) for known in lines if known is not None) or "none"
        default = " (and the default line, without `line`)" if None in lines else ""
        message = f"{_line_label(use_case, line)} is not served; lines served: {served}{default}"
        raise NotFound(message, [{"path": "line", "message": message}])

    def lines(self, use_case: str) -> list[str | None]:
        """The lines of a use case served here, the default (None) first."""
        lines = [line for (case, line) in self._lines if case == use_case]
        return sorted(lines, key=lambda line: (line is not None, line or ""))

    def line_of(self, name: str) -> tuple[str, str | None] | None:
        """The (use case, line) a loaded model serves."""
        return next((key for key, served in self._lines.items() if served == name), None)

    def all(self) -> list[Scorer]:
        return [
            self._scorers[(name, self.alias)] for name in self.names if (name, self.alias) in self._scorers
        ]

    def challenger(self, name: str) -> Scorer | None:
        """The loaded challenger (only when challengers are loaded, for shadow scoring)."""
        return self._scorers.get((name, CHALLENGER))

    def challenger_info(self, name: str) -> dict[str, Any] | None:
        """The challenger as last seen: loaded here, or only known from the registry's alias and tags."""
        scorer = self.challenger(name)
        if scorer is not None:
            holdout = scorer.metadata.get("holdout", {})
            return {
                "version": scorer.version,
                "alias": CHALLENGER,
                "loaded_at": scorer.loaded_at,
                "holdout_metrics": {k: v for k, v in holdout.items() if isinstance(v, int | float)},
            }
        ref = self._known.get((name, CHALLENGER))
        if ref is None:
            return None
        return {
            "version": ref.version,
            "alias": CHALLENGER,
            "loaded_at": None,
            "holdout_metrics": _holdout_tags(ref.tags),
        }

    def refusals(self, name: str) -> list[Refusal]:
        """Refused versions an alias still points to: the registry says serve them, this worker will not."""
        pointed = {
            ref.version for (model, _), ref in self._known.items() if model == name and ref is not None
        }
        return [r for (model, version), r in self._refused.items() if model == name and version in pointed]

    def load_all(self) -> None:
        """At start-up: one poll. What fails is logged; readiness stays 503 until a later poll loads it."""
        self.poll()

    def poll(self) -> None:
        """One pass of the watcher: follow every alias move. Never raises: scoring goes on regardless."""
        for name in self.names:
            outcome = "ok"
            for alias in self._aliases():
                try:
                    self._sync(name, alias, retry_refused=False)
                except RegistryUnavailable as exc:
                    outcome = "unavailable"
                    log.warning(
                        "registry unavailable while polling %s@%s; still serving what is loaded: %s",
                        name,
                        alias,
                        exc,
                        extra={"model": name},
                    )
                except VersionRefusedError:
                    pass  # logged and counted where it was refused
                except Exception:
                    log.exception("polling %s@%s failed", name, alias)
            metrics.REGISTRY_POLLS.labels(name, outcome).inc()

    def follow(self, name: str) -> Scorer | None:
        """Serve what the served alias of `name` points to now, without waiting for the next poll (the profile
        refresher, before it scores). A version refused before is not tried again, as in a poll; raises
        RegistryUnavailable and VersionRefusedError as a poll meets them. Returns what serves after the call."""
        return self._sync(name, self.alias, retry_refused=False)

    def reload(self, name: str) -> Reload:
        """Load what the served alias points to now and swap it in (trying a refused version again); the
        challenger follows too when challengers are loaded."""
        if name not in self.names:
            raise NotFound(f"{name} is not served here; served: {', '.join(self.names)}")
        previous = self._scorers.get((name, self.alias))
        try:
            scorer = self._sync(name, self.alias, retry_refused=True)
        except RegistryUnavailable as exc:
            message = f"the registry is unavailable; still serving what is loaded: {exc}"
            raise RegistryUnreachableError(message) from exc
        if self.load_challengers:
            try:
                self._sync(name, CHALLENGER, retry_refused=True)
            except (RegistryUnavailable, VersionRefusedError):
                log.warning("%s: the challenger did not reload; the next poll tries again", name)
        if scorer is None:
            raise ModelNotLoaded(f"{name} has no {self.alias} version in the registry")
        return Reload(scorer=scorer, previous_version=previous.version if previous else None)

    def _aliases(self) -> list[str]:
        # The challenger alias is always followed so /v1/models can show it; it is loaded only for shadowing.
        return [self.alias] if self.alias == CHALLENGER else [self.alias, CHALLENGER]

    def _sync(self, name: str, alias: str, *, retry_refused: bool) -> Scorer | None:
        """Make the loaded scorer for (name, alias) the version the alias points to now, if it can be served.

        Returns what serves after the call. Raises RegistryUnavailable when the registry cannot be read, and
        VersionRefusedError when the version the alias points to fails to load or to score its example.
        """
        key = (name, alias)
        with self._sync_lock:
            ref = self.registry.resolve(name, alias)
            self._known[key] = ref
            current = self._scorers.get(key)
            if alias != self.alias and not self.load_challengers:
                return None
            if ref is None:
                if alias == self.alias:
                    if current is not None:  # never stop scoring: the alias may come back
                        log.warning(
                            "%s has no %s alias; still serving version %d", name, alias, current.version
                        )
                    return current
                self._unload(key)  # the challenger was promoted or withdrawn
                return None
            if current is not None and current.version == ref.version:
                return current
            if (name, ref.version) in self._refused and not retry_refused:
                return current
            scorer = self._load(name, alias, ref.version, current)
            self._swap(key, scorer, current)
            return scorer

    def _load(self, name: str, alias: str, version: int, current: Scorer | None) -> Scorer:
        try:
            bundle = self.registry.load(name, version, nthread=self.threads)
            scorer = Scorer(
                name=name,
                version=version,
                alias=alias,
                loaded_at=datetime.now(UTC),
                bundle=bundle,
                exact_contributions=self.exact_contributions,
            )
        except RegistryUnavailable:
            raise  # not the version's fault: the next poll tries again
        except Exception as exc:
            self._refuse(name, alias, version, current, f"does not load: {exc}")
        try:
            scorer.check()
        except Exception as exc:
            self._refuse(name, alias, version, current, f"fails its check: {exc}")
        self._refused.pop((name, version), None)
        return scorer

    def _refuse(self, name: str, alias: str, version: int, current: Scorer | None, reason: str) -> NoReturn:
        self._refused[(name, version)] = Refusal(
            version=version, alias=alias, reason=reason, at=datetime.now(UTC)
        )
        metrics.MODEL_LOAD_FAILURES.labels(name, str(version)).inc()
        serving = f"version {current.version} keeps serving" if current else "nothing is served yet"
        message = f"{name} version {version} ({alias}) refused: it {reason}; {serving}"
        log.error(message, extra={"model": name, "version": version})
        raise VersionRefusedError(message)

    def _swap(self, key: tuple[str, str], scorer: Scorer, previous: Scorer | None) -> None:
        name, alias = key
        self._scorers[key] = scorer
        if alias == self.alias:
            self._lines[(scorer.metadata.get("use_case", name), scorer.metadata.get("line"))] = name
        # The old scorer is freed (its boosters with it) once the requests still holding it are done.
        if previous is not None:
            metrics.MODEL_INFO.remove(name, str(previous.version), alias)
        metrics.MODEL_INFO.labels(name, str(scorer.version), alias).set(1)
        metrics.MODEL_SWAPS.labels(name, alias).inc()
        log.info(
            "serving %s version %d (%s)%s",
            name,
            scorer.version,
            alias,
            f", replacing version {previous.version}" if previous else "",
            extra={"model": name, "version": scorer.version},
        )

    def _unload(self, key: tuple[str, str]) -> None:
        previous = self._scorers.pop(key, None)
        if previous is not None:
            metrics.MODEL_INFO.remove(key[0], str(previous.version), key[1])
            log.info("unloaded %s version %d (%s): the alias is gone", key[0], previous.version, key[1])


def _line_label(use_case: str, line: str | None) -> str:
    return f"the default {use_case} line" if line is None else f"{use_case} line {line!r}"


def _holdout_tags(tags: dict[str, str]) -> dict[str, float]:
    """Holdout figures from a version's tags (`holdout.roc_auc`, ...), set by publish() on each version."""
    figures = {}
    for key, value in tags.items():
        if key.startswith("holdout."):
            try:
                figures[key.removeprefix("holdout.")] = float(value)
            except ValueError:
                continue
    return figures
