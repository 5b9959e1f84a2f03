"""Exact TreeSHAP against XGBoost's approximate contributions on the churn champion: cost and agreement.

Run: `.venv/bin/python -m bench.contributions` (after `make train`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import xgboost as xgb

from app.scoring.runtime.scorer import Scorer
from bench.run import DATA_DIR, churn_champion
from model_registry.registry import CHAMPION
from model_registry.settings import RegistrySettings
from training.data import load_dataset
from training.spec import find_spec


def _ms(call: Callable[[], Any], repeat: int) -> float:
    call()
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - started) / repeat * 1000


def main() -> None:
    version, bundle = churn_champion(RegistrySettings())
    booster = bundle.boosters["model"]
    dataset = load_dataset(find_spec("churn"), DATA_DIR)
    matrix, _ = bundle.contract.encode(dataset.records(dataset.holdout))
    print(f"clm-churn v{version}: {booster.num_boosted_rounds()} trees, {len(matrix)} holdout rows")
    for approx in (False, True):
        name = "approximate" if approx else "exact"
        one = _ms(
            lambda a=approx: booster.predict(xgb.DMatrix(matrix[:1]), pred_contribs=True, approx_contribs=a),
            300,
        )
        batch = _ms(
            lambda a=approx: booster.predict(
                xgb.DMatrix(matrix[:1000]), pred_contribs=True, approx_contribs=a
            ),
            5,
        )
        print(f"{name:<12} one row {one:.2f} ms, 1,000 rows {batch:.1f} ms")
    scorers = [
        Scorer("clm-churn", version, CHAMPION, datetime.now(UTC), bundle, exact_contributions=e)
        for e in (True, False)
    ]
    exact, approx = (s.contributions(matrix) for s in scorers)
    top1 = np.mean(np.argmax(np.abs(exact), axis=1) == np.argmax(np.abs(approx), axis=1))
    top5 = np.mean(
        [
            len(set(np.argsort(-np.abs(e))[:5]) & set(np.argsort(-np.abs(a))[:5])) / 5
            for e, a in zip(exact, approx, strict=True)
        ]
    )
    print(f"approximate names the same top reason for {top1:.1%} of rows; top-5 fields overlap {top5:.1%}")


if __name__ == "__main__":
    main()
