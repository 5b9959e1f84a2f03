"""Benchmark the call-centre view: GET /v1/customers/{id}/profile for the 7,043 stored Telco customers.

Needs the champions (`make train`). Loads the customers into a database of its own (SQLite, in a temporary
folder), serves the app as bench.run does (same workers, one XGBoost thread each) and keeps 1 and then 8
connections busy with profiles of every customer in random order (a call centre rarely sees the same caller
twice in a minute), in two scenarios:
- scored on view: no stored scores, the memo and the background refresher off, what a customer whose stored
  scores are not current costs;
- stored scores: after `clm score customers`, as `make run` serves (the default memo on, the refresher idle).
Prints requests/s, p50 and p99, and writes bench-results/profile.json.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.load import build_get, run_load
from bench.run import DATA_DIR, KEY, SECONDS, WORKERS, _server

PORT = 8203
BIN = Path(sys.executable).parent
TELCO = DATA_DIR / "telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"


def main() -> None:
    with TELCO.open(newline="") as handle:
        ids = [row["customerID"] for row in csv.DictReader(handle)]
    random.Random(7).shuffle(ids)
    requests = [build_get(f"/v1/customers/{i}/profile", KEY) for i in ids]
    folder = Path(tempfile.mkdtemp(prefix="clm-bench-profile-"))
    env = {
        **os.environ,
        "CLM_DATABASE_URL": f"sqlite:///{folder / 'clm.db'}",
        "CLM_API_KEYS": json.dumps({KEY["X-API-Key"]: ["score"]}),
        "CLM_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        "CLM_PORT": str(PORT),
        "CLM_WORKERS": str(WORKERS),
        # The profile reads only these two models: serving them alone keeps the others' memory out of it.
        "CLM_MODELS": '["clm-churn", "clm-products"]',
    }
    print(
        f"profile of {len(ids)} stored customers ({WORKERS} workers); database and logs in {folder}",
        flush=True,
    )
    subprocess.run([str(BIN / "clm"), "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [str(BIN / "clm"), "ingest", "customers", str(TELCO)], env=env, check=True, capture_output=True
    )
    results: dict[str, Any] = {"workers": WORKERS, "seconds_per_scenario": SECONDS, "scenarios": []}
    for scenario in ("scored on view", "stored scores"):
        scenario_env = env
        if scenario == "scored on view":
            # No memo, and no background refresher: it would store the scores while the scenario runs.
            scenario_env = {**env, "CLM_PROFILE_MEMO_SIZE": "0", "CLM_PROFILE_REFRESH": "false"}
        else:
            subprocess.run([str(BIN / "clm"), "score", "customers"], env=env, check=True, capture_output=True)
        log = folder / f"{scenario.replace(' ', '-')}.log"
        with _server([str(BIN / "python"), "-m", "app"], scenario_env, PORT, "/readyz", log):
            for concurrency in (1, 8):
                asyncio.run(run_load(PORT, requests, concurrency, seconds=1.0))  # warm up
                result = asyncio.run(run_load(PORT, requests, concurrency, seconds=SECONDS))
                row = {
                    "scenario": scenario,
                    "concurrency": concurrency,
                    "requests": result.requests,
                    "failures": result.failures,
                    "rps": round(result.rps, 1),
                    "p50_ms": round(result.percentile_ms(50), 2),
                    "p99_ms": round(result.percentile_ms(99), 2),
                }
                results["scenarios"].append(row)
                print(
                    f"  {scenario:<15} concurrency {concurrency}: {row['rps']:>7} req/s  p50 {row['p50_ms']:>7} ms"
                    f"  p99 {row['p99_ms']:>7} ms  failures {row['failures']}",
                    flush=True,
                )
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "profile.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
