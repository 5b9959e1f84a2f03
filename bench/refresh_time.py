"""How long after an alias move stored profiles are current again, with the service running and no command run.

    PYTHONPATH=$PWD .venv/bin/python -m bench.refresh_time [--url http://127.0.0.1:8000] -- clm promote churn

runs the command given after `--` (a promotion, a rollback, an ingest), then polls, every 0.1 s, the database
(CLM_DATABASE_URL) for the stored customers whose profile scores are not current for the versions the
registry's aliases point to now (CLM_MODELS, CLM_ALIAS) and the service's /metrics for its refresher. Prints,
from the moment the alias moved (seen by polling the registry while the command runs; for a command that
moves none, the moment it returned): when the refresher stored its first new scores, when the service's
backlog metric was back at 0, and when the database held current scores for every stored customer.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request

from app.db import Database
from app.repositories import profile_scores
from app.scoring.use_cases.churn import CHURN_MODEL
from app.scoring.use_cases.products import PRODUCTS_MODEL
from app.settings import Settings
from model_registry.registry import ModelRegistry


def refresher_metrics(url: str) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(("clm_profile_refresh_backlog ", "clm_profile_refreshed_total "))
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="The running service.")
    parser.add_argument("--timeout", type=float, default=300.0, help="Give up after this many seconds.")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="The command to run, after --.")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    settings = Settings()
    registry = ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))
    database = Database(settings.database_url)
    before = refresher_metrics(args.url)
    if not before:
        sys.exit(f"no refresher metrics at {args.url}/metrics: is the service running?")
    refreshed_before = before.get("clm_profile_refreshed_total", 0.0)

    def served() -> tuple[int | None, int | None]:
        refs = [
            registry.resolve(name, settings.alias) if name in settings.models else None
            for name in (CHURN_MODEL, PRODUCTS_MODEL)
        ]
        return refs[0].version if refs[0] else None, refs[1].version if refs[1] else None

    versions = served()
    started = None
    running = subprocess.Popen(command) if command else None
    while running is not None and running.poll() is None:
        if started is None and served() != versions:
            started = time.monotonic()  # the alias moved
        time.sleep(0.1)
    if running is not None and running.returncode != 0:
        sys.exit(f"`{' '.join(command)}` failed with exit code {running.returncode}")
    moved = started is not None or served() != versions
    started = started or time.monotonic()
    churn, products = served()
    assert churn is not None, f"{CHURN_MODEL} has no {settings.alias} version"
    since = "the alias moved" if moved else "the command returned"
    print(
        f"after `{' '.join(command)}`: {CHURN_MODEL} {churn}, {PRODUCTS_MODEL} {products}; times from when "
        f"{since}",
        flush=True,
    )
    first_store = metric_zero = None
    while True:
        elapsed = time.monotonic() - started
        with database.engine.connect() as connection:
            stale = profile_scores.count_stale(connection, churn, products)
        seen = refresher_metrics(args.url)
        if first_store is None and seen.get("clm_profile_refreshed_total", 0.0) > refreshed_before:
            first_store = elapsed
            print(f"  {elapsed:6.1f} s  the refresher stored its first batch", flush=True)
        if first_store is not None and metric_zero is None and seen.get("clm_profile_refresh_backlog") == 0:
            metric_zero = elapsed
            print(f"  {elapsed:6.1f} s  clm_profile_refresh_backlog 0", flush=True)
        if stale == 0:
            refreshed = seen.get("clm_profile_refreshed_total", 0.0) - refreshed_before
            print(f"  {elapsed:6.1f} s  every stored profile current ({refreshed:.0f} refreshed)", flush=True)
            break
        if elapsed > args.timeout:
            sys.exit(f"  {elapsed:6.1f} s  still {stale} stored profiles not current: giving up")
        time.sleep(0.1)
    database.dispose()


if __name__ == "__main__":
    main()
