"""This process's side of a named lease (app/repositories/leases.py): the background jobs that one process of all
sharing the database runs (the profile refresher, the drift job) take it at each check, renew it with their
writes, and give it up when they stop, so that another process takes over at once instead of at its expiry."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable

from sqlalchemy import Connection

from app.db import Database
from app.repositories import leases

log = logging.getLogger(__name__)


class LeaseHolder:
    def __init__(
        self,
        database: Database,
        name: str,
        seconds: float,
        *,
        holder: str | None = None,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.database = database
        self.name = name
        self.seconds = seconds
        # Unique per process and per app: two apps in one process (tests) are two holders.
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:200]
        self.holding = False
        self._on_change = on_change

    def take(self) -> bool:
        """Take the lease, or renew it when this process holds it: True when it holds it now."""
        with self.database.engine.begin() as connection:
            held = leases.take(connection, self.name, self.holder, self.seconds)
        if held != self.holding:
            log.info("%s lease: %s (holder %s)", self.name, "holding" if held else "lost", self.holder)
        self._set(held)
        return held

    def renew(self, connection: Connection) -> bool:
        """Renew it in the caller's transaction, which it fences (see leases.renew): False when another process
        holds it now, and the caller must not commit its writes."""
        held = leases.renew(connection, self.name, self.holder, self.seconds)
        self._set(held)
        return held

    def give_up(self, why: str) -> None:
        """Give the lease up, if held. A failure is logged and the lease stays this process's (the database
        still names it): given up at the next call, or expired on its own if none comes."""
        if not self.holding:
            return
        try:
            with self.database.engine.begin() as connection:
                leases.release(connection, self.name, self.holder)
        except Exception as exc:  # whatever failed, the lease expires on its own
            log.warning("%s lease: could not give it up (%s), it expires on its own: %s", self.name, why, exc)
            return
        log.info("%s lease: given up (%s; holder %s)", self.name, why, self.holder)
        self._set(False)

    def _set(self, held: bool) -> None:
        if held != self.holding and self._on_change is not None:
            self._on_change(held)
        self.holding = held
