"""Benchmark the call-centre view: GET /v1/customers/{id}/profile for stored Telco customers.

Needs the champions (`make train`) and the demo customers (`make customers`). Serves the app as bench.run does
(same workers, one XGBoost thread each) and keeps 1 and then 8 connections busy with profiles of 500 stored
customers drawn at random, first with the score memo off (every view scored afresh), then on (the default: a
repeat view of an unchanged customer reuses its scores; the 500 ids cycle, so nearly every view is a repeat).
Prints requests/s, p50 and p99, and writes bench-results/profile.json.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.load import build_get, run_load
from bench.run import DATA_DIR, KEY, SECONDS, WORKERS, _server

PORT = 8203
BIN = Path(sys.executable).parent
TELCO = "telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"


def main() -> None:
    with (DATA_DIR / TELCO).open(newline="") as handle:
        ids = [row["customerID"] for row in csv.DictReader(handle)]
    requests = [build_get(f"/v1/customers/{i}/profile", KEY) for i in random.Random(7).sample(ids, 500)]
    env = {
        **os.environ,
        "CLM_API_KEYS": json.dumps({KEY["X-API-Key"]: ["score"]}),
        "CLM_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        "CLM_PORT": str(PORT),
        "CLM_WORKERS": str(WORKERS),
        # The profile reads only these two models: serving them alone keeps the others' memory out of it.
        "CLM_MODELS": '["clm-churn", "clm-products"]',
    }
    results: dict[str, Any] = {"workers": WORKERS, "seconds_per_scenario": SECONDS, "scenarios": []}
    logs = Path(tempfile.mkdtemp(prefix="clm-bench-profile-"))
    print(f"profile of 500 stored customers ({WORKERS} workers); server logs in {logs}", flush=True)
    # Scored afresh on every view (memo off), then as served by default: repeat views reuse their scores.
    for memo, size in (("off", "0"), ("on", os.environ.get("CLM_PROFILE_MEMO_SIZE", "10000"))):
        with _server(
            [str(BIN / "python"), "-m", "app"],
            {**env, "CLM_PROFILE_MEMO_SIZE": size},
            PORT,
            "/readyz",
            logs / f"memo-{memo}.log",
        ):
            for concurrency in (1, 8):
                asyncio.run(run_load(PORT, requests, concurrency, seconds=1.0))  # warm up
                result = asyncio.run(run_load(PORT, requests, concurrency, seconds=SECONDS))
                row = {
                    "memo": memo,
                    "concurrency": concurrency,
                    "requests": result.requests,
                    "failures": result.failures,
                    "rps": round(result.rps, 1),
                    "p50_ms": round(result.percentile_ms(50), 2),
                    "p99_ms": round(result.percentile_ms(99), 2),
                }
                results["scenarios"].append(row)
                print(
                    f"  memo {memo:<3}  concurrency {concurrency}: {row['rps']:>7} req/s  p50 {row['p50_ms']:>7} ms"
                    f"  p99 {row['p99_ms']:>7} ms  failures {row['failures']}",
                    flush=True,
                )
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "profile.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
