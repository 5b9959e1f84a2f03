"""Benchmark the profile while the background refresher works: does a refresh cost the views their latency?

Needs the champions (`make train`). Loads the 7,043 Telco customers into a database of its own (SQLite, in a
temporary folder), stores every profile's scores (`clm score customers`), serves the app as bench.profile does
(same workers, one XGBoost thread each, the refresher checking every second) and keeps 8 connections busy
with profiles of one half of the customers (stored scores, current), in rounds of two windows:
- idle: the refresher has nothing to do;
- refreshing: the other half's stored scores were made stale just before (as a promotion makes them all), and
  the holder of the refresher's lease scores them meanwhile; the load runs while it does (the refresh lasts
  longer than the window: it is checked).
The windows alternate (ROUNDS of each, CLM_BENCH_ROUNDS, default 3) so that other work on the machine weighs on
both alike. Prints requests/s, p50 and p99 of each over all its windows, the refresh times, and writes
bench-results/refresh.json.
`CLM_PROFILE_REFRESH_BATCH` and the other refresher settings pass through to the service.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.load import LoadResult, build_get, run_load
from bench.run import DATA_DIR, KEY, WORKERS, _server

PORT = 8204
BIN = Path(sys.executable).parent
TELCO = DATA_DIR / "telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"
SECONDS = float(os.environ.get("CLM_BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("CLM_BENCH_ROUNDS", "3"))


def refresher(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(("clm_profile_refresh_backlog ", "clm_profile_refreshed_total "))
    }


def main() -> None:
    with TELCO.open(newline="") as handle:
        ids = [row["customerID"] for row in csv.DictReader(handle)]
    random.Random(7).shuffle(ids)
    viewed, refreshed = ids[: len(ids) // 2], ids[len(ids) // 2 :]
    requests = [build_get(f"/v1/customers/{i}/profile", KEY) for i in viewed]
    folder = Path(tempfile.mkdtemp(prefix="clm-bench-refresh-"))
    database = folder / "clm.db"
    env = {
        "CLM_PROFILE_REFRESH_INTERVAL": "1",
        **os.environ,
        "CLM_DATABASE_URL": f"sqlite:///{database}",
        "CLM_API_KEYS": json.dumps({KEY["X-API-Key"]: ["score"]}),
        "CLM_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        "CLM_PORT": str(PORT),
        "CLM_WORKERS": str(WORKERS),
        "CLM_MODELS": '["clm-churn", "clm-products"]',
    }
    print(
        f"profiles of {len(viewed)} customers while the other {len(refreshed)} are refreshed ({WORKERS} workers)"
    )
    print(f"database and logs in {folder}", flush=True)
    for command in (["db", "upgrade"], ["ingest", "customers", str(TELCO)], ["score", "customers"]):
        subprocess.run([str(BIN / "clm"), *command], env=env, check=True, capture_output=True)
    results: dict[str, Any] = {"workers": WORKERS, "seconds": SECONDS, "rounds": ROUNDS, "scenarios": []}
    windows: dict[str, list[LoadResult]] = {"idle": [], "refreshing": []}
    refresh_seconds = []
    with _server([str(BIN / "python"), "-m", "app"], env, PORT, "/readyz", folder / "service.log"):
        asyncio.run(run_load(PORT, requests, 8, seconds=1.0))  # warm up
        for _ in range(ROUNDS):
            windows["idle"].append(asyncio.run(run_load(PORT, requests, 8, seconds=SECONDS)))
            before = refresher(PORT)["clm_profile_refreshed_total"]
            with sqlite3.connect(database) as connection:
                connection.executemany(
                    "UPDATE profile_scores SET churn_version = -1 WHERE customer_id = ?",
                    [(i,) for i in refreshed],
                )
            started = time.monotonic()
            while refresher(PORT)["clm_profile_refreshed_total"] == before:  # the holder's next check
                time.sleep(0.05)
            load_started = time.monotonic()
            windows["refreshing"].append(asyncio.run(run_load(PORT, requests, 8, seconds=SECONDS)))
            load_ended = time.monotonic()
            while refresher(PORT)["clm_profile_refresh_backlog"] > 0:
                time.sleep(0.05)
            refresh_seconds.append(round(time.monotonic() - started, 1))
            if time.monotonic() - load_ended < 0.2:
                print(f"  (the refresh ended {load_ended - load_started:.1f} s into a window: it is diluted)")
    for scenario, results_of in windows.items():
        latencies = [latency for result in results_of for latency in result.latencies]
        merged = LoadResult(
            requests=sum(r.requests for r in results_of),
            failures=sum(r.failures for r in results_of),
            elapsed=sum(r.elapsed for r in results_of),
            latencies=latencies,
        )
        row = {
            "scenario": scenario,
            "requests": merged.requests,
            "failures": merged.failures,
            "rps": round(merged.rps, 1),
            "p50_ms": round(merged.percentile_ms(50), 2),
            "p99_ms": round(merged.percentile_ms(99), 2),
        }
        results["scenarios"].append(row)
        print(
            f"  {scenario:<11} {row['rps']:>7} req/s  p50 {row['p50_ms']:>6} ms  p99 {row['p99_ms']:>6} ms  "
            f"failures {row['failures']}",
            flush=True,
        )
    results["refresh_seconds"] = refresh_seconds
    print(
        f"  refreshes of {len(refreshed)} customers took {', '.join(map(str, refresh_seconds))} s", flush=True
    )
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "refresh.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
