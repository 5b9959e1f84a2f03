"""Promote and roll back under steady load: how long until every worker serves the new version, and how many
requests fail meanwhile (the goal: none).

Standalone: trains two churn versions (champion, then a retrain as challenger) into a temporary registry,
starts the service (`python -m app`) with several workers polling it, keeps scoring with fresh connections (so the kernel spreads
them over the workers), promotes the challenger through the gate, then rolls back, and writes a JSON summary.

    PYTHONPATH=$PWD .venv/bin/python -m bench.promotion --workers 2 --interval 5
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.schemas.churn import TELCO_EXAMPLE as CUSTOMER
from model_registry.registry import ModelRegistry
from training.binary import train_binary
from training.promotion import GateSettings, promote, rollback
from training.spec import find_spec

log = logging.getLogger("bench.promotion")
KEY = "bench-key"


@dataclass(frozen=True)
class Answer:
    sent: float  # time.monotonic() when the request went out
    seconds: float
    status: int  # 0: no HTTP answer at all
    version: int | None


class Load:
    """Threads scoring one customer at a time, each request on a new connection."""

    def __init__(self, url: str, threads: int) -> None:
        self.url = url
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(headers={"X-API-Key": KEY}, limits=limits, timeout=10) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(f"{self.url}/v1/churn/score", json={"customers": [CUSTOMER]})
                    status = response.status_code
                    version = response.json()["model"]["version"] if status == 200 else None
                except httpx.HTTPError:
                    status, version = 0, None
                with self._lock:
                    self.answers.append(Answer(sent, time.monotonic() - sent, status, version))

    def since(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.sent >= moment]


def switch(load: Load, moved_at: float, old: int, new: int, settle: float) -> dict[str, float | int | None]:
    """Wait `settle` seconds after an alias move, then measure how the answers changed from old to new."""
    time.sleep(settle)
    answers = load.since(moved_at)
    first_new = min((a.sent for a in answers if a.version == new), default=None)
    last_old = max((a.sent for a in answers if a.version == old), default=None)
    return {
        "requests": len(answers),
        "failed": sum(a.status != 200 for a in answers),
        "first_new_after_s": None if first_new is None else round(first_new - moved_at, 3),
        # The last request any worker still answered with the old version: every worker had switched after it.
        "all_workers_switched_after_s": round(last_old - moved_at, 3) if last_old is not None else 0.0,
        "old_after_settle": sum(a.version == old for a in answers if a.sent >= moved_at + settle / 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=5.0, help="CLM_RELOAD_INTERVAL_SECONDS")
    parser.add_argument("--threads", type=int, default=4, help="client threads keeping the load up")
    parser.add_argument("--port", type=int, default=8104)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("CLM_DATA_DIR", "../shared/data"))
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results/promotion.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("mlflow", "alembic", "urllib3", "httpx", "training"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="clm-bench-") as tmp:
        root = Path(tmp)
        registry = ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", str(root / "artifacts"))
        spec = find_spec("churn")
        log.info("training the champion and a challenger (the full churn spec)")
        champion, _ = train_binary(spec, args.data_dir, registry)
        challenger, _ = train_binary(spec, args.data_dir, registry, as_challenger=True)

        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": registry.tracking_uri,
            "CLM_RELOAD_INTERVAL_SECONDS": str(args.interval),
            "CLM_API_KEYS": json.dumps({KEY: ["score", "admin"]}),
            "CLM_MODELS": json.dumps([spec.registered_model]),
            "CLM_LOG_LEVEL": "WARNING",
            "CLM_DATABASE_URL": f"sqlite:///{root / 'clm.db'}",
        }
        subprocess.run(
            [sys.executable, "-m", "app.cli", "db", "upgrade"], env=env, check=True, capture_output=True
        )
        env.update(CLM_HOST="127.0.0.1", CLM_PORT=str(args.port), CLM_WORKERS=str(args.workers))
        command = [sys.executable, "-m", "app"]  # the service as deployed (app/server.py)
        url = f"http://127.0.0.1:{args.port}"
        with (root / "server.log").open("wb") as server_log:
            server = subprocess.Popen(
                command, env=env, stdout=server_log, stderr=server_log, start_new_session=True
            )
        try:
            wait_ready(url)
            load = Load(url, args.threads)
            load.start()
            time.sleep(3)  # steady state first
            settle = 2 * args.interval + 2

            result = promote(registry, spec, args.data_dir, GateSettings().margins())
            promoted_at = time.monotonic()
            log.info("gate: %s; champion is version %d", result.decision, challenger.version)
            promotion = switch(load, promoted_at, champion.version, challenger.version, settle)

            rollback(registry, spec.registered_model)
            rolled_back_at = time.monotonic()
            log.info("rolled back to version %d", champion.version)
            back = switch(load, rolled_back_at, challenger.version, champion.version, settle)
            load.stop()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    seconds = [a.seconds for a in load.answers if a.status == 200]
    summary = {
        "workers": args.workers,
        "poll_interval_s": args.interval,
        "client_threads": args.threads,
        "requests": len(load.answers),
        "failed": sum(a.status != 200 for a in load.answers),
        "latency_ms": {
            "p50": round(1000 * statistics.median(seconds), 2),
            "p99": round(1000 * statistics.quantiles(seconds, n=100)[98], 2),
            "max": round(1000 * max(seconds), 2),
        },
        "promote": promotion,
        "rollback": back,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")


def wait_ready(url: str, patience: float = 120) -> None:
    """Ready when ten answers in a row, on fresh connections (so from any worker), say so."""
    deadline, in_a_row = time.monotonic() + patience, 0
    while time.monotonic() < deadline:
        try:
            in_a_row = in_a_row + 1 if httpx.get(f"{url}/readyz", timeout=2).status_code == 200 else 0
        except httpx.HTTPError:
            in_a_row = 0
        if in_a_row == 10:
            return
        time.sleep(0.2)
    raise SystemExit(f"the service at {url} did not become ready")


if __name__ == "__main__":
    main()
