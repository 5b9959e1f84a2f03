"""Drift on a shifted and on a random population, through the real service: a check anyone can rerun.

Trains a churn version (the spec's settings; `--short` for the tests' short fit) into a temporary registry,
serves it in-process on a temporary SQLite database with every scored record sampled, scores the Telco
customers with tenure under 12 months, then a random sample of all customers of the same size (seed 17), and
prints each population's drift from GET /v1/models/clm-churn/drift: every field's PSI, the share of fields
drifting and the score's PSI. Not part of the tests (tests/test_drift.py asserts the same).

    PYTHONPATH=$PWD .venv/bin/python -m bench.drift_check [--short]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.db import Database
from app.main import create_app
from app.settings import Settings
from bench.run import DATA_DIR
from model_registry.registry import ModelRegistry
from training.binary import train_binary
from training.data import load_dataset
from training.spec import find_spec

KEY = "bench-key"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the tests' short fit (60 rounds at most)")
    args = parser.parse_args()
    spec = find_spec("churn")
    if args.short:
        short = spec.training.model_copy(update={"max_rounds": 60, "early_stopping_rounds": 20})
        spec = spec.model_copy(update={"training": short})
    telco = load_dataset(spec, DATA_DIR).records()
    shifted = [r for r in telco if r["tenure"] < 12]
    sample = random.Random(17).sample(telco, len(shifted))
    with tempfile.TemporaryDirectory() as folder:
        registry = ModelRegistry(f"sqlite:///{folder}/mlflow.db", f"{folder}/artifacts")
        train_binary(spec, DATA_DIR, registry)
        url = f"sqlite:///{folder}/clm.db"
        database = Database(url)
        database.upgrade()
        database.dispose()
        settings = Settings(
            mlflow_tracking_uri=registry.tracking_uri,
            artifact_root=Path(folder) / "artifacts",
            api_keys={KEY: ["score"]},
            models=["clm-churn"],
            database_url=url,
            drift_sample_rate=1.0,
            drift_job=False,
            profile_refresh=False,
            prediction_log_interval=0.05,
        )
        with TestClient(create_app(settings)) as client:
            client.headers["X-API-Key"] = KEY
            for name, population in (("tenure < 12 months", shifted), ("random sample", sample)):
                since = datetime.now(UTC)
                show(name, drift_after(client, population, since))


def drift_after(client: TestClient, records: list[dict[str, Any]], since: datetime) -> dict[str, Any]:
    for start in range(0, len(records), 1000):
        body = {"customers": records[start : start + 1000], "explain": False}
        client.post("/v1/churn/score", json=body).raise_for_status()
    while True:  # until the prediction log has written every sampled record
        figures: dict[str, Any] = client.get(
            "/v1/models/clm-churn/drift", params={"since": since.isoformat()}
        ).json()
        if figures["records"] == len(records):
            return figures


def show(name: str, figures: dict[str, Any]) -> None:
    print(
        f"{name}: {figures['records']:,} records, share of fields drifting {figures['share_drifting']:.2f},"
        f" score PSI {figures['score']['psi']:.3f}"
    )
    for field in figures["fields"]:
        print(f"  {field['field']:<18} PSI {field['psi']:.4f}  {field['status']}")


if __name__ == "__main__":
    main()
