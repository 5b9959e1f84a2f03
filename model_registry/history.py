"""Who was champion when: every move of the `champion` alias made through `clm`, kept in the registry itself.

Each move is one tag on the registered model, `clm.champion.<UTC timestamp>`, holding a JSON entry: the
version, when it became champion, the action (first version, promote, forced promote, rollback), who ran it,
the version it replaced and the gate's figures. One tag per move means writers never rewrite each other's
entries, and the history travels with the registry (the MLflow UI shows it). A term ends when the next begins.
"""

from __future__ import annotations

import getpass
import json
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from model_registry.registry import CHAMPION, ModelRegistry

TAG_PREFIX = "clm.champion."
FIRST_VERSION, PROMOTE, FORCED_PROMOTE, ROLLBACK = "first version", "promote", "forced promote", "rollback"


@dataclass(frozen=True)
class ChampionTerm:
    """One version's time as champion."""

    version: int
    since: datetime
    until: datetime | None
    action: str
    user: str
    previous: int | None
    gate: dict[str, Any] = field(default_factory=dict)


def move_champion(
    registry: ModelRegistry, name: str, version: int, *, action: str, gate: dict[str, Any] | None = None
) -> None:
    """Point `champion` at a version and record the move (the alias first: it is what serving follows)."""
    previous = registry.resolve(name, CHAMPION)
    registry.set_alias(name, CHAMPION, version)
    now = datetime.now(UTC)
    entry = {
        "version": version,
        "from": now.isoformat(),
        "action": action,
        "user": _who(),
        "previous": previous.version if previous else None,
        "gate": gate or {},
    }
    registry.set_model_tag(name, TAG_PREFIX + now.strftime("%Y%m%dT%H%M%S.%fZ"), json.dumps(entry))


def champion_history(registry: ModelRegistry, name: str) -> list[ChampionTerm]:
    """Every recorded term, oldest first; the last one has no end while it lasts."""
    entries = [
        json.loads(value)
        for key, value in sorted(registry.model_tags(name).items())
        if key.startswith(TAG_PREFIX)
    ]
    starts = [datetime.fromisoformat(e["from"]) for e in entries]
    return [
        ChampionTerm(
            version=int(e["version"]),
            since=start,
            until=starts[i + 1] if i + 1 < len(starts) else None,
            action=e["action"],
            user=e.get("user", ""),
            previous=e.get("previous"),
            gate=e.get("gate", {}),
        )
        for i, (e, start) in enumerate(zip(entries, starts, strict=True))
    ]


def rollback_target(history: list[ChampionTerm], current: int) -> int | None:
    """The champion before the current one, undoing rollbacks as they went: after promotions 1 -> 2 -> 3, a
    rollback goes to 2, the next to 1, and then there is nothing left to roll back to."""
    stack: list[int] = []
    for term in history:
        if term.action == ROLLBACK:
            while stack and stack[-1] != term.version:
                stack.pop()
            if not stack:
                stack.append(term.version)
        else:
            # The version replaced was champion even when clm did not put it there (before the history began,
            # or the alias was moved by hand).
            if term.previous is not None and (not stack or stack[-1] != term.previous):
                stack.append(term.previous)
            stack.append(term.version)
    # An alias moved outside clm leaves the current version off the top: the last recorded one is the target.
    while stack and stack[-1] == current:
        stack.pop()
    return stack[-1] if stack else None


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # containers running as a uid without a passwd entry
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
