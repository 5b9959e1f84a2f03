"""Exact reasons: the TreeSHAP tables the service explains with against XGBoost's own exact TreeSHAP, per served
model, on the registered champions and their holdout rows; then XGBoost's approximation on the churn champion.

Run: `.venv/bin/python -m bench.contributions` (after `make train`; `make bench` runs it too).

For every booster of every served model (CLM_MODELS): the largest difference from XGBoost's exact contributions
(`pred_contribs=True, approx_contribs=False`) on all holdout rows, and whether the probabilities are
booster.predict's; rows/s on the first 1,000 holdout rows and the time of one row, both on one thread (the
booster's nthread=1, as served, and the tables' single-threaded kernel). XGBoost is timed on a DMatrix built
beforehand for the batch (its algorithm alone) and with the DMatrix built in the call for one row (what a request
paid). Each figure is the best of several runs: the machine is shared, and the best run is the least disturbed.
Then the probabilities alone, as every scoring route without reasons computes them: the walk of the trees the
scorer uses (app/scoring/runtime/treewalk.py) against XGBoost's inplace_predict, for 1,000 rows and for one.
Writes bench-results/contributions.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.treeshap import TreeShap
from app.scoring.runtime.treewalk import TreeWalk
from app.settings import Settings
from bench.run import DATA_DIR
from model_registry.catalogue import ProductCatalogue, hide_fields
from model_registry.registry import CHAMPION, ModelRegistry
from training.data import load_dataset
from training.spec import all_specs

BATCH = 1000


def _best_ms(call: Callable[[], Any], repeat: int, runs: int = 5) -> float:
    call()
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        best = min(best, (time.perf_counter() - started) / repeat * 1000)
    return best


def _booster_figures(booster: xgb.Booster, rows: np.ndarray) -> dict[str, Any]:
    booster.set_param({"nthread": 1})
    tables = TreeShap.of(booster)
    margins, contributions = tables.explain(rows)
    data = xgb.DMatrix(rows, missing=np.nan, nthread=1)
    reference = booster.predict(data, pred_contribs=True, approx_contribs=False, validate_features=False)
    same_probabilities = np.array_equal(tables.probabilities(margins), booster.predict(data))
    batch = rows[:BATCH]
    batch_data = xgb.DMatrix(batch, missing=np.nan, nthread=1)
    xgb_batch = _best_ms(
        lambda: booster.predict(batch_data, pred_contribs=True, validate_features=False), 1, runs=3
    )
    ours_batch = _best_ms(lambda: tables.probabilities(tables.explain(batch)[0]), 3)
    one = rows[:1]
    xgb_one = _best_ms(
        lambda: booster.predict(
            xgb.DMatrix(one, missing=np.nan, nthread=1), pred_contribs=True, validate_features=False
        ),
        100,
    )
    ours_one = _best_ms(lambda: tables.probabilities(tables.explain(one)[0]), 300)
    walk = TreeWalk.of(booster)
    return {
        "trees": booster.num_boosted_rounds(),
        "holdout_rows": len(rows),
        "max_abs_diff": float(np.max(np.abs(contributions - reference))),
        "probabilities_bit_equal": bool(same_probabilities),
        "build_ms": round(tables.build_seconds * 1000, 1),
        "tables_mib": round(tables.nbytes / 2**20, 2),
        "rows_per_s": {
            "tables": round(len(batch) / ours_batch * 1000),
            "xgboost": round(len(batch) / xgb_batch * 1000),
        },
        "speedup_batch": round(xgb_batch / ours_batch, 1),
        "one_row_ms": {"tables": round(ours_one, 4), "xgboost_with_dmatrix": round(xgb_one, 4)},
        "speedup_one_row": round(xgb_one / ours_one, 1),
        "probabilities": _probability_figures(walk, booster, rows),
    }


def _probability_figures(walk: TreeWalk, booster: xgb.Booster, rows: np.ndarray) -> dict[str, Any]:
    """Probabilities without reasons: the walk the scorer uses against XGBoost's inplace_predict."""
    batch, one = rows[:BATCH], rows[:1]
    batch_ms = [
        _best_ms(lambda: walk.probabilities(batch), 3),
        _best_ms(lambda: booster.inplace_predict(batch), 3),
    ]
    one_ms = [
        _best_ms(lambda: walk.probabilities(one), 300),
        _best_ms(lambda: booster.inplace_predict(one), 100),
    ]
    return {
        "bit_equal": bool(np.array_equal(walk.probabilities(rows), booster.inplace_predict(rows))),
        "rows_per_s": {
            "walk": round(len(batch) / batch_ms[0] * 1000),
            "xgboost": round(len(batch) / batch_ms[1] * 1000),
        },
        "one_row_us": {"walk": round(one_ms[0] * 1000, 1), "xgboost": round(one_ms[1] * 1000, 1)},
    }


def _approximation(registry: ModelRegistry, rows: np.ndarray, version: int) -> str:
    """How often XGBoost's approximation names the exact reasons, and what it costs beside the tables."""
    bundle = registry.load("clm-churn", version)
    scorers = [
        Scorer("clm-churn", version, CHAMPION, datetime.now(UTC), bundle, exact_contributions=e)
        for e in (True, False)
    ]
    exact, approx = (s.contributions(rows) for s in scorers)
    top1 = np.mean(np.argmax(np.abs(exact), axis=1) == np.argmax(np.abs(approx), axis=1))
    top5 = np.mean(
        [
            len(set(np.argsort(-np.abs(e))[:5]) & set(np.argsort(-np.abs(a))[:5])) / 5
            for e, a in zip(exact, approx, strict=True)
        ]
    )
    batch = rows[:BATCH]
    rates = [BATCH / _best_ms(lambda s=s: s.contributions(batch), 3) * 1000 for s in scorers]
    return (
        f"clm-churn: the approximation names the same top reason for {top1:.1%} of rows, top-5 fields overlap "
        f"{top5:.1%}; per-field reasons for {BATCH:,} rows: exact (tables) {rates[0]:,.0f} rows/s, "
        f"approximate (XGBoost, DMatrix included) {rates[1]:,.0f} rows/s"
    )


def main() -> None:
    settings = Settings()
    registry = ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))
    specs = {spec.registered_model: spec for spec in all_specs()}
    results: dict[str, Any] = {}
    print(
        f"{'model / booster':<34} {'trees':>5} {'max |diff|':>10} {'p equal':>7} {'build':>8} {'tables':>8} "
        f"{'tables rows/s':>13} {'xgb rows/s':>10} {'x':>5} {'1 row tables':>12} {'1 row xgb':>10} {'x':>5}"
    )
    churn_rows, churn_version = None, None
    for name in settings.models:
        ref = registry.resolve(name, CHAMPION)
        if ref is None or name not in specs:
            print(f"{name}: no champion (run `make train`)")
            continue
        bundle = registry.load(name, ref.version)
        if not bundle.boosters:  # a value model: fitted parameters, no trees to explain
            continue
        dataset = load_dataset(specs[name], DATA_DIR)
        rows, errors = bundle.contract.encode(dataset.records(dataset.holdout))
        if errors:
            raise SystemExit(f"{name}: the holdout does not encode: {errors[:3]}")
        if name == "clm-churn":
            churn_rows, churn_version = rows, ref.version
        hidden = {}
        if "products" in bundle.metadata:  # each product is explained with its own fields hidden, as served
            catalogue = ProductCatalogue.from_metadata(bundle.metadata)
            hidden = {p.name: hide_fields(rows, bundle.contract, p.hidden_fields) for p in catalogue.products}
        for key, booster in bundle.boosters.items():
            figures = _booster_figures(booster, hidden.get(key, rows))
            label = f"{name} v{ref.version}" + ("" if key == "model" else f" {key}")
            results[label] = figures
            print(
                f"{label:<34} {figures['trees']:>5} {figures['max_abs_diff']:>10.2e} "
                f"{'yes' if figures['probabilities_bit_equal'] else 'NO':>7} {figures['build_ms']:>6.0f}ms "
                f"{figures['tables_mib']:>6.2f}MiB {figures['rows_per_s']['tables']:>13,} "
                f"{figures['rows_per_s']['xgboost']:>10,} {figures['speedup_batch']:>5.1f} "
                f"{figures['one_row_ms']['tables']:>10.3f}ms {figures['one_row_ms']['xgboost_with_dmatrix']:>8.3f}ms "
                f"{figures['speedup_one_row']:>5.1f}",
                flush=True,
            )
            walked = figures["probabilities"]
            print(
                f"  probabilities alone: {'bit-equal' if walked['bit_equal'] else 'DIFFERENT'}; walk "
                f"{walked['rows_per_s']['walk']:,} rows/s, 1 row {walked['one_row_us']['walk']} us; XGBoost "
                f"inplace_predict {walked['rows_per_s']['xgboost']:,} rows/s, 1 row {walked['one_row_us']['xgboost']} us",
                flush=True,
            )
    print(
        f"rows/s on the first {BATCH:,} holdout rows, one thread each; 1 row: the tables' call (margins, "
        "contributions, probabilities) against DMatrix + pred_contribs; best of 3-5 runs"
    )
    if churn_rows is not None and churn_version is not None:
        print(_approximation(registry, churn_rows, churn_version))
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "contributions.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
