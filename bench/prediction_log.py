"""Benchmark the prediction log's cost per 1,000 rows, without and with scored records kept in full.

Real Telco records (the first 1,000 of the file) with made-up scores go through `PredictionLog.submit` as a
1,000-record churn request does, then the writer's own write (`_write_pending`, called here in the foreground
so it can be timed) puts them in a fresh database. Rounds alternate between the log keeping no records (what
it cost before it kept any) and keeping a share `--sample-rate` of them (default 0.1, the service's default),
or with `--by-id` every record (stored customers scored by id), so the machine's other load weighs on both
sides alike. Prints the means (submit on the request path; the write's wall time and the writing thread's
CPU) and the rise of the CPU per 1,000 rows, for SQLite and, with `--postgres URL`, PostgreSQL (a schema of
its own, dropped after). Not part of the tests.

    PYTHONPATH=$PWD .venv/bin/python -m bench.prediction_log \
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
from app.prediction_log import Prediction, PredictionLog, ScoredBatch
from bench.run import DATA_DIR

TELCO = DATA_DIR / "telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"
ROWS = 1000
ROUNDS = 100


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


def measure(url: str, sample_rate: float, by_id: bool) -> dict[str, dict[str, float]]:
    """Rounds alternate between keeping no records (the log as it was) and keeping them (`sample_rate`, or
    every record with `by_id`), in one process on one database, so the machine's other load weighs on both
    alike; means per side (kept records are written a batch at a time, every tenth round at 0.1: a mean counts
    them, a median would not)."""
    database = Database(url)
    database.upgrade()
    prediction_log = PredictionLog(database.engine, capacity=100_000, batch_size=ROWS, interval=1.0)
    records = telco_records()
    generator = random.Random(7)
    sides = {"without records": (0.0, frozenset()), "with records": (sample_rate, frozenset())}
    if by_id:
        sides["with records"] = (sample_rate, frozenset(range(len(records))))
    figures: dict[str, dict[str, list[float]]] = {
        side: {"submit_ms": [], "write_ms": [], "write_cpu_ms": []} for side in sides
    }
    for _ in range(ROUNDS):
        for side, (rate, stored) in sides.items():
            scores = [Prediction(r["customer_id"], generator.random(), "low") for r in records]
            # What the route has at hand already: its results, and which records the store completed.
            results = [{"churn_probability": p.score} for p in scores]
            batch = ScoredBatch(records, results, "churn_probability", "customer_id", stored)
            prediction_log.sample_rate = rate
            started = time.perf_counter()
            prediction_log.submit("/v1/churn/score", "clm-churn", 1, uuid.uuid4().hex, scores, batch)
            figures[side]["submit_ms"].append((time.perf_counter() - started) * 1000)
            started, cpu = time.perf_counter(), time.thread_time()
            assert prediction_log._write_pending()
            figures[side]["write_ms"].append((time.perf_counter() - started) * 1000)
            figures[side]["write_cpu_ms"].append((time.thread_time() - cpu) * 1000)
    database.dispose()
    return {side: {k: statistics.mean(v) for k, v in values.items()} for side, values in figures.items()}


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
    parser.add_argument("--sample-rate", type=float, default=0.1)
    parser.add_argument("--postgres", help="a PostgreSQL URL; a schema of its own is made and dropped")
    parser.add_argument(
        "--by-id", action="store_true", help="the records are stored customers scored by id: all kept in full"
    )
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = measure(f"sqlite:///{Path(folder) / 'clm.db'}", args.sample_rate, args.by_id)
    if args.postgres:
        schema, url = postgres_schema(args.postgres)
        try:
            results["postgresql"] = measure(url, args.sample_rate, args.by_id)
        finally:
            drop_schema(args.postgres, schema)
    kept = "every record kept (scored by id)" if args.by_id else f"sample rate {args.sample_rate}"
    print(f"prediction log, {ROWS:,} rows per request, mean of {ROUNDS} alternating rounds; {kept}")
    for backend, sides in results.items():
        for side, figures in sides.items():
            print(
                f"  {backend:<10} {side:<16} submit {figures['submit_ms']:6.2f} ms   write"
                f" {figures['write_ms']:6.2f} ms (CPU {figures['write_cpu_ms']:5.2f} ms)"
            )
        before, after = sides["without records"], sides["with records"]
        total_before = before["submit_ms"] + before["write_cpu_ms"]
        total_after = after["submit_ms"] + after["write_cpu_ms"]
        print(
            f"  {backend:<10} CPU per 1,000 rows (submit + write): {total_before:.2f} -> {total_after:.2f} ms"
            f" ({100 * (total_after / total_before - 1):+.0f} %)"
        )


if __name__ == "__main__":
    main()
