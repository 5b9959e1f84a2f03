"""observe_many (one update per bucket for a batch of scores) exports exactly what observing one by one does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from app.metrics import PROBABILITY_BUCKETS, observe_many


def test_a_batch_observed_at_once_exports_the_histogram_of_one_by_one_observations() -> None:
    # Values on the bucket bounds, between them, at 0 and 1, and beyond the last bound (+Inf).
    values = np.concatenate(
        [np.array([0.0, 0.1, 0.2, 0.30000001, 0.5, 1.0, 1.5]), np.random.default_rng(3).random(997)]
    )
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    first = Histogram("scores", "s", ["model"], buckets=PROBABILITY_BUCKETS, registry=one_by_one)
    second = Histogram("scores", "s", ["model"], buckets=PROBABILITY_BUCKETS, registry=at_once)
    for value in values.tolist():
        first.labels("m").observe(value)

    observe_many(second.labels("m"), values)
    observe_many(second.labels("m"), values[:0])  # an empty batch changes nothing

    expected, got = samples(one_by_one), samples(at_once)
    assert got.pop("scores_sum") == pytest.approx(
        expected.pop("scores_sum"), rel=1e-12
    )  # summed in another order
    assert got == expected
    assert got["scores_bucket", "+Inf"] == 1004


def samples(registry: CollectorRegistry) -> dict[Any, float]:
    return {
        (s.name, s.labels["le"]) if "le" in s.labels else s.name: s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }
