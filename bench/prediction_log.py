"""Benchmark the prediction log's cost per 1,000 rows: making them when served, and writing them.

Real Telco records (the first 1,000 of the file) with made-up scores go through `PredictionLog.submit` as a
1,000-record churn request does, then the writer's own write (`_write_pending`, called here in the foreground
so it can be timed) puts them in a fresh database. With `--sample-rate R` (R > 0) the records are handed over
too, and the log keeps a share R of them in full for drift (scored_records); R 0 hands no records over, which
is what the log cost before it kept any. Prints medians over ROUNDS rounds (wall and CPU of the writing
thread), for SQLite and, with `--postgres URL`, PostgreSQL. Not part of the tests.

    PYTHONPATH=$PWD .venv/bin/python -m bench.prediction_log --sample-rate 0
    PYTHONPATH=$PWD .venv/bin/python -m bench.prediction_log --sample-rate 0.1 \
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from app.db import Database
from app.prediction_log import Prediction, PredictionLog
from bench.run import DATA_DIR

TELCO = DATA_DIR / "telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"
ROWS = 1000
ROUNDS = 30


def telco_records() -> list[dict[str, Any]]:
    with TELCO.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:ROWS]
    return [
        {
            "customer_id": row["customerID"],
            "gender": row["gender"],
            "senior_citizen": int(row["SeniorCitizen"]),
            "tenure": int(row["tenure"]),
            "contract": row["Contract"],
            "monthly_charges": float(row["MonthlyCharges"]),
            "total_charges": float(row["TotalCharges"]) if row["TotalCharges"].strip() else None,
            "internet_service": row["InternetService"],
            "payment_method": row["PaymentMethod"],
            "paperless_billing": row["PaperlessBilling"],
            "phone_service": row["PhoneService"],
            "multiple_lines": row["MultipleLines"],
            "online_security": row["OnlineSecurity"],
            "online_backup": row["OnlineBackup"],
            "device_protection": row["DeviceProtection"],
            "tech_support": row["TechSupport"],
            "streaming_tv": row["StreamingTV"],
            "streaming_movies": row["StreamingMovies"],
            "partner": row["Partner"],
            "dependents": row["Dependents"],
        }
        for row in rows
    ]


class ChurnScorer:
    """What `submit` reads of a scorer: its name and version."""

    name = "clm-churn"
    version = 1


def measure(url: str, sample_rate: float) -> dict[str, float]:
    database = Database(url)
    database.upgrade()
    prediction_log = PredictionLog(database.engine, capacity=100_000, batch_size=ROWS, interval=1.0)
    if sample_rate > 0:
        prediction_log.sample_rate = sample_rate
    records = telco_records()
    generator = random.Random(7)
    submit_ms, write_ms, write_cpu_ms = [], [], []
    for _ in range(ROUNDS):
        scores = [Prediction(r["customer_id"], generator.random(), "low") for r in records]
        started = time.perf_counter()
        if sample_rate > 0:
            prediction_log.submit(
                "/v1/churn/score", "clm-churn", 1, uuid.uuid4().hex, scores, records=records
            )
        else:
            prediction_log.submit("/v1/churn/score", "clm-churn", 1, uuid.uuid4().hex, scores)
        submit_ms.append((time.perf_counter() - started) * 1000)
        started, cpu = time.perf_counter(), time.thread_time()
        assert prediction_log._write_pending()
        write_ms.append((time.perf_counter() - started) * 1000)
        write_cpu_ms.append((time.thread_time() - cpu) * 1000)
    database.dispose()
    return {
        "submit_ms": statistics.median(submit_ms),
        "write_ms": statistics.median(write_ms),
        "write_cpu_ms": statistics.median(write_cpu_ms),
    }


def postgres_schema(admin_url: str) -> tuple[str, str]:
    schema = f"clm_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    separator = "&" if "?" in admin_url else "?"
    return schema, f"{admin_url}{separator}options=-csearch_path%3D{schema}"


def drop_schema(admin_url: str, schema: str) -> None:
    engine = create_engine(admin_url)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-rate", type=float, default=0.0)
    parser.add_argument("--postgres", help="a PostgreSQL URL; a schema of its own is made and dropped")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = measure(f"sqlite:///{Path(folder) / 'clm.db'}", args.sample_rate)
    if args.postgres:
        schema, url = postgres_schema(args.postgres)
        try:
            results["postgresql"] = measure(url, args.sample_rate)
        finally:
            drop_schema(args.postgres, schema)
    print(f"prediction log, {ROWS:,} rows per request, median of {ROUNDS}; sample rate {args.sample_rate}")
    for backend, figures in results.items():
        print(
            f"  {backend:<10} submit {figures['submit_ms']:6.2f} ms   write {figures['write_ms']:6.2f} ms"
            f" (CPU {figures['write_cpu_ms']:5.2f} ms)"
        )


if __name__ == "__main__":
    main()
