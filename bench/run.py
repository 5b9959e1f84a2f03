"""Run the benchmark: this service and `mlflow models serve` of the same registered version, in one run.

Both servers get the same number of worker processes and the same API records (real Telco holdout rows):
`mlflow models serve` loads the version's record model (app/bulk/record_model.py), which takes the records
the API takes and answers with the same figures, reasons when asked (`params.explain`). Prints requests/s,
p50/p99 and rows/s for both, and the ratios; writes bench-results/latest.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.load import LoadResult, build_request, run_load
from model_registry.bundle import ModelBundle
from model_registry.registry import CHAMPION, ModelRegistry
from model_registry.settings import RegistrySettings
from training.data import load_dataset
from training.spec import find_spec

SERVICE_PORT, MLFLOW_PORT = 8201, 8202
WORKERS = int(os.environ.get("CLM_BENCH_WORKERS", "2"))
SECONDS = float(os.environ.get("CLM_BENCH_SECONDS", "8"))
KEY = {"X-API-Key": "bench-key"}
DATA_DIR = Path(os.environ.get("CLM_DATA_DIR", "../shared/data"))
BIN = Path(sys.executable).parent


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, path: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for port {port} exited with code {process.returncode}; see its log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server on port {port} did not become ready in {timeout:.0f} s")


@contextmanager
def _server(command: list[str], env: dict[str, str], port: int, ready_path: str, log: Path) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_until_ready(process, port, ready_path)
            yield
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _row(name: str, result: LoadResult, rows_per_request: int) -> dict[str, Any]:
    return {
        "scenario": name,
        "requests": result.requests,
        "failures": result.failures,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.percentile_ms(50), 2),
        "p99_ms": round(result.percentile_ms(99), 2),
        "rows_per_s": round(result.rps * rows_per_request, 1),
    }


def _measure(port: int, scenarios: list[tuple[str, list[bytes], int, int]]) -> list[dict[str, Any]]:
    rows = []
    for name, requests, concurrency, rows_per_request in scenarios:
        asyncio.run(run_load(port, requests, concurrency, seconds=1.0))  # warm up connections and caches
        result = asyncio.run(run_load(port, requests, concurrency, seconds=SECONDS))
        rows.append(_row(name, result, rows_per_request))
        print(
            f"  {name:<40} {rows[-1]['rps']:>9} req/s  p50 {rows[-1]['p50_ms']:>8} ms  "
            f"p99 {rows[-1]['p99_ms']:>8} ms  {rows[-1]['rows_per_s']:>10} rows/s  failures {result.failures}",
            flush=True,
        )
    return rows


def _lead_pool(data_dir: Path) -> list[dict[str, Any]]:
    """1,000 real inbound leads from the holdout, with their IDs: the pool a dispatcher ranks."""
    spec = find_spec("leads", "inbound")
    dataset = load_dataset(spec, data_dir)
    pool = dataset.records(dataset.holdout)[:1000]
    for lead, lead_id in zip(pool, dataset.ids[dataset.holdout], strict=False):
        lead["lead_number"] = int(lead_id)
    return pool


def churn_champion(settings: RegistrySettings) -> tuple[int, ModelBundle]:
    """The registered churn champion, as both servers serve it: its version and bundle."""
    registry = ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))
    ref = registry.resolve("clm-churn", CHAMPION)
    if ref is None:
        raise SystemExit("clm-churn has no champion: run `make train` first")
    return ref.version, registry.load("clm-churn", ref.version)


def main() -> None:
    settings = RegistrySettings()
    version, bundle = churn_champion(settings)
    data_dir = DATA_DIR
    dataset = load_dataset(find_spec("churn"), data_dir)
    records = dataset.records(dataset.holdout)
    for record, customer_id in zip(records, dataset.ids[dataset.holdout], strict=True):
        record["customer_id"] = customer_id

    def service_body(batch: list[dict[str, Any]], explain: bool) -> bytes:
        return json.dumps({"customers": batch, "explain": explain}).encode()

    def mlflow_body(batch: list[dict[str, Any]], explain: bool) -> bytes:
        # The same records, in MLflow's scoring protocol; the record model's `explain` is a param.
        return json.dumps({"dataframe_records": batch, "params": {"explain": explain}}).encode()

    singles = [build_request("/v1/churn/score", service_body([r], True), KEY) for r in records[:500]]
    singles_plain = [build_request("/v1/churn/score", service_body([r], False), KEY) for r in records[:500]]
    batch = [build_request("/v1/churn/score", service_body(records[:1000], False), KEY)]
    batch_explained = [build_request("/v1/churn/score", service_body(records[:1000], True), KEY)]
    leads = _lead_pool(data_dir)
    rank_plain = [
        build_request(
            "/v1/leads/rank", json.dumps({"line": "inbound", "leads": leads, "explain": False}).encode(), KEY
        )
    ]
    rank_top = [
        build_request(
            "/v1/leads/rank", json.dumps({"line": "inbound", "leads": leads, "top_k": 50}).encode(), KEY
        )
    ]
    ml_singles = [build_request("/invocations", mlflow_body([r], True), {}) for r in records[:500]]
    ml_batch = [build_request("/invocations", mlflow_body(records[:1000], False), {})]
    ml_batch_explained = [build_request("/invocations", mlflow_body(records[:1000], True), {})]

    results: dict[str, Any] = {
        "model": {
            "name": "clm-churn",
            "version": version,
            "trees": bundle.boosters["model"].num_boosted_rounds(),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "workers": WORKERS,
        "seconds_per_scenario": SECONDS,
    }
    logs = Path(tempfile.mkdtemp(prefix="clm-bench-"))
    # mlflow serve starts `uvicorn` by name: the venv's bin must be on PATH.
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    base_env = {**os.environ, "PATH": path, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as prom:
        env = {
            **base_env,
            "CLM_API_KEYS": json.dumps({"bench-key": ["score", "admin"]}),
            "CLM_LOG_LEVEL": "WARNING",
            "PROMETHEUS_MULTIPROC_DIR": prom,
        }
        # The service as deployed: `python -m app` (one SO_REUSEPORT socket per worker, app/server.py).
        command = [str(BIN / "python"), "-m", "app"]
        env.update(CLM_HOST="127.0.0.1", CLM_PORT=str(SERVICE_PORT), CLM_WORKERS=str(WORKERS))
        print(f"service ({WORKERS} workers), clm-churn version {version}:", flush=True)
        with _server(command, env, SERVICE_PORT, "/readyz", logs / "service.log"):
            print(f"  (server logs in {logs})", flush=True)
            results["service"] = _measure(
                SERVICE_PORT,
                [
                    ("single, reasons, concurrency 1", singles, 1, 1),
                    ("single, reasons, concurrency 8", singles, 8, 1),
                    ("single, reasons, concurrency 32", singles, 32, 1),
                    ("single, no reasons, concurrency 8", singles_plain, 8, 1),
                    ("batch 1000, no reasons", batch, 1, 1000),
                    ("batch 1000, reasons", batch_explained, 1, 1000),
                    ("rank 1000 inbound leads, no reasons", rank_plain, 1, 1000),
                    ("rank 1000 inbound leads, top_k 50 explained", rank_top, 1, 1000),
                ],
            )
    command = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/clm-churn/{version}",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(MLFLOW_PORT),
        "-w",
        str(WORKERS),
    ]
    env = {**base_env, "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri}
    print(f"mlflow models serve ({WORKERS} workers), same version:", flush=True)
    with _server(command, env, MLFLOW_PORT, "/ping", logs / "mlflow.log"):
        results["mlflow"] = _measure(
            MLFLOW_PORT,
            [
                ("single, reasons, concurrency 1", ml_singles, 1, 1),
                ("single, reasons, concurrency 8", ml_singles, 8, 1),
                ("single, reasons, concurrency 32", ml_singles, 32, 1),
                ("batch 1000, no reasons", ml_batch, 1, 1000),
                ("batch 1000, reasons", ml_batch_explained, 1, 1000),
            ],
        )
    ours = {r["scenario"]: r for r in results["service"]}
    theirs = {r["scenario"]: r for r in results["mlflow"]}
    # The same records and the same figures on both sides: each ratio is one scenario, service / mlflow.
    results["ratios"] = {
        f"single c={c}, with reasons, service / mlflow": round(
            ours[f"single, reasons, concurrency {c}"]["rps"]
            / theirs[f"single, reasons, concurrency {c}"]["rps"],
            1,
        )
        for c in (1, 8, 32)
    }
    for reasons in ("no reasons", "reasons"):
        scenario = f"batch 1000, {reasons}"
        results["ratios"][f"{scenario} rows/s, service / mlflow"] = round(
            ours[scenario]["rows_per_s"] / theirs[scenario]["rows_per_s"], 1
        )
    print("ratios:")
    for name, ratio in results["ratios"].items():
        print(f"  {name:<55} {ratio}x")
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"written to {out / 'latest.json'}; server logs in {logs}")


if __name__ == "__main__":
    main()
