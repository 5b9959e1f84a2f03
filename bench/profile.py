"""Benchmark the call-centre view: GET /v1/customers/{id}/profile for the 7,043 stored Telco customers.

Needs the champions (`make train`) and wrk (`apt-get install wrk`): a C client, so the load takes little of the
two cores it shares with the service it measures. On SQLite (a temporary file) and on PostgreSQL (a schema of
its own in CLM_BENCH_POSTGRES_URL, dropped at the end; skipped, and said so, when the server is not there), it
loads the customers, serves the app with one worker (CLM_BENCH_PROFILE_WORKERS) and keeps 1 and then 8
connections busy with profiles of every customer in random order (a call centre rarely sees the same caller
twice in a minute), in two scenarios:
- scored on view: no stored scores, the memo and the background refresher off, what a customer whose stored
  scores are not current costs;
- stored scores: after `clm score customers`, as `make run` serves (the default memo on, the refresher idle).
Then, on SQLite, the same server answers one churn record with its reasons per request (POST /v1/churn/score, 200
holdout customers in turn), as a CRM screen asks for one lead or customer at a time.
Prints requests/s, p50 and p99, and writes bench-results/profile.json.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from bench.run import DATA_DIR, KEY, SECONDS, _server
from training.data import load_dataset
from training.spec import find_spec

PORT = 8203
WORKERS = int(os.environ.get("CLM_BENCH_PROFILE_WORKERS", "1"))
POSTGRES_URL = os.environ.get("CLM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BIN = Path(sys.executable).parent
TELCO = DATA_DIR / "telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"
SCENARIOS = ("scored on view", "stored scores")  # then "one record, reasons" on SQLite


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench.profile needs wrk on the PATH (Debian: apt-get install wrk)")
    with TELCO.open(newline="") as handle:
        ids = [row["customerID"] for row in csv.DictReader(handle)]
    random.Random(7).shuffle(ids)
    folder = Path(tempfile.mkdtemp(prefix="clm-bench-profile-"))
    script = folder / "profiles.lua"
    script.write_text(_wrk_script(ids))
    single = folder / "single.lua"
    single.write_text(_single_record_script())
    print(f"profile of {len(ids)} stored customers ({WORKERS} worker(s), wrk); logs in {folder}", flush=True)
    results: dict[str, Any] = {"workers": WORKERS, "seconds_per_scenario": SECONDS, "scenarios": []}
    for backend in ("sqlite", "postgresql"):
        with _database(backend, folder) as url:
            if url is None:
                print(
                    f"  postgresql: skipped, no server at {POSTGRES_URL} (CLM_BENCH_POSTGRES_URL)", flush=True
                )
                continue
            results["scenarios"] += _measure(backend, url, folder, script, single)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "profile.json").write_text(json.dumps(results, indent=2))


def _measure(backend: str, url: str, folder: Path, script: Path, single: Path) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        "CLM_DATABASE_URL": url,
        "CLM_API_KEYS": json.dumps({KEY["X-API-Key"]: ["score"]}),
        "CLM_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        "CLM_PORT": str(PORT),
        "CLM_WORKERS": str(WORKERS),
        # The profile reads only these two models: serving them alone keeps the others' memory out of it.
        "CLM_MODELS": '["clm-churn", "clm-products"]',
    }
    subprocess.run([str(BIN / "clm"), "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [str(BIN / "clm"), "ingest", "customers", str(TELCO)], env=env, check=True, capture_output=True
    )
    rows = []
    for scenario in SCENARIOS:
        scenario_env = env
        if scenario == "scored on view":
            # No memo, and no background refresher: it would store the scores while the scenario runs.
            scenario_env = {**env, "CLM_PROFILE_MEMO_SIZE": "0", "CLM_PROFILE_REFRESH": "false"}
        else:
            subprocess.run([str(BIN / "clm"), "score", "customers"], env=env, check=True, capture_output=True)
        log = folder / f"{backend}-{scenario.replace(' ', '-')}.log"
        with _server([str(BIN / "python"), "-m", "app"], scenario_env, PORT, "/readyz", log):
            for concurrency in (1, 8):
                rows.append(_run(backend, scenario, script, concurrency))
            if backend == "sqlite" and scenario == "stored scores":
                rows.append(_run(backend, "one record, reasons", single, 8))
    return rows


def _run(backend: str, scenario: str, script: Path, concurrency: int) -> dict[str, Any]:
    _wrk(script, concurrency, 2.0)  # warm up: connections, prepared statements, caches
    row = {"backend": backend, "scenario": scenario, **_wrk(script, concurrency, SECONDS)}
    print(
        f"  {backend:<10} {scenario:<19} concurrency {concurrency}: {row['rps']:>7} req/s"
        f"  p50 {row['p50_ms']:>6} ms  p99 {row['p99_ms']:>6} ms  failures {row['failures']}",
        flush=True,
    )
    return row


@contextmanager
def _database(backend: str, folder: Path) -> Iterator[str | None]:
    """A new, empty database of the backend (None when PostgreSQL is not reachable), removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'clm.db'}"
        return
    schema = f"clm_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError:
        admin.dispose()
        yield None
        return
    try:
        options = {"options": f"-csearch_path={schema}"}
        yield make_url(POSTGRES_URL).update_query_dict(options).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _wrk_script(ids: list[str]) -> str:
    """wrk's Lua: each request the next customer's profile; any answer but 200 is counted as a failure."""
    quoted = ",".join(json.dumps(i) for i in ids)
    return f"""
local ids = {{{quoted}}}
local key = {json.dumps(KEY["X-API-Key"])}
local n = math.random(#ids)
request = function()
  n = n % #ids + 1
  return wrk.format("GET", "/v1/customers/" .. ids[n] .. "/profile", {{["X-API-Key"] = key}})
end
"""


def _single_record_script() -> str:
    """wrk's Lua: each request scores the next of 200 holdout customers, one record with its reasons."""
    dataset = load_dataset(find_spec("churn"), DATA_DIR)
    bodies = [json.dumps({"customers": [r], "explain": True}) for r in dataset.records(dataset.holdout)[:200]]
    return f"""
local bodies = {{{",".join(json.dumps(b) for b in bodies)}}}
local headers = {{["X-API-Key"] = {json.dumps(KEY["X-API-Key"])}, ["Content-Type"] = "application/json"}}
local n = 0
request = function()
  n = n % #bodies + 1
  return wrk.format("POST", "/v1/churn/score", headers, bodies[n])
end
"""


def _wrk(script: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    output = subprocess.run(
        [
            "wrk",
            f"-t{min(concurrency, 2)}",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{PORT}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    requests = int(_find(r"(\d+) requests in", output))
    failures = int(_find(r"Non-2xx or 3xx responses: (\d+)", output, "0"))
    failures += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return {
        "concurrency": concurrency,
        "requests": requests,
        "failures": failures,
        "rps": round(float(_find(r"Requests/sec:\s+([\d.]+)", output)), 1),
        "p50_ms": _milliseconds(_find(r"50%\s+([\d.]+\w+)", output)),
        "p99_ms": _milliseconds(_find(r"99%\s+([\d.]+\w+)", output)),
    }


def _find(pattern: str, output: str, default: str | None = None) -> str:
    match = re.search(pattern, output)
    if match is None:
        if default is None:
            raise ValueError(f"wrk's output has no {pattern!r}:\n{output}")
        return default
    return match.group(1)


def _milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return round(float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)


if __name__ == "__main__":
    main()
