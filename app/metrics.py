"""Prometheus metrics, defined once. HTTP metrics carry the route template, never the raw path; model metrics
carry model and version. With several worker processes set PROMETHEUS_MULTIPROC_DIR (multiprocess mode)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))

HTTP_REQUESTS = Counter(
    "clm_http_requests_total", "HTTP requests by route template and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "clm_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
PREDICTION_LOG_BUFFERED = Gauge(
    "clm_prediction_log_buffered",
    "Prediction-log rows served but not yet written to the database",
    multiprocess_mode="livesum",
)
PREDICTION_LOG_WRITTEN = Counter("clm_prediction_log_written_total", "Prediction-log rows written")
PREDICTION_LOG_DROPPED = Counter(
    "clm_prediction_log_dropped_total",
    "Prediction-log rows lost: buffer full (overflow), unwritten at shutdown, or refused by the database",
    ["reason"],
)
PREDICTION_LOG_WRITE_FAILURES = Counter(
    "clm_prediction_log_write_failures_total", "Prediction-log writes that failed and will be retried"
)
SCORED_RECORDS_WRITTEN = Counter(
    "clm_scored_records_written_total",
    "Scored records kept in full (sampled for drift, or stored customers scored by id) and written",
)
SCORED_RECORDS_DROPPED = Counter(
    "clm_scored_records_dropped_total",
    "Scored records to keep in full that were lost: buffer full, unwritten at shutdown, or refused",
)
# Set by the process holding the drift job's lease only (as the refresher's backlog): the holder's last values.
DRIFT_FIELD_PSI = Gauge(
    "clm_drift_psi",
    "Population stability index of a field: the served model's sampled records of the drift window against "
    "the version's reference profile (0.1 watch, 0.25 act)",
    ["model", "version", "field"],
    multiprocess_mode="livemostrecent",
)
DRIFT_SCORE_PSI = Gauge(
    "clm_drift_score_psi",
    "Population stability index of the scores served in the drift window against the version's reference",
    ["model", "version"],
    multiprocess_mode="livemostrecent",
)
DRIFT_FIELDS_DRIFTING = Gauge(
    "clm_drift_fields_drifting_share",
    "Share of the model's fields whose PSI is at or above the watch threshold (CLM_DRIFT_PSI_WATCH)",
    ["model", "version"],
    multiprocess_mode="livemostrecent",
)
# Set by the drift job's lease holder too: the performance route's figure, for dashboards and alerts.
REALISED_ROC_AUC = Gauge(
    "clm_realised_roc_auc",
    "ROC AUC of a served version's logged scores against the outcomes recorded since (GET /v1/models/{name}/"
    "performance), counted in the database by the drift job",
    ["model", "version"],
    multiprocess_mode="livemostrecent",
)
JUDGED_RECORDS = Gauge(
    "clm_judged_records",
    "Logged scores of a served version with a recorded outcome to judge them by",
    ["model", "version"],
    multiprocess_mode="livemostrecent",
)
DRIFT_RECORDS = Gauge(
    "clm_drift_records",
    "Sampled records in the drift window the figures were computed from",
    ["model", "version"],
    multiprocess_mode="livemostrecent",
)
PROFILE_SCORES = Counter(
    "clm_profile_scores_total",
    "Where customer profiles got their scores: stored by the batch job, remembered by the worker, or scored",
    ["source"],
)
# Set by the process holding the refresher's lease only; "livemostrecent": /metrics shows the value the holder
# set last, and a dead holder's value goes with it.
PROFILE_REFRESH_BACKLOG = Gauge(
    "clm_profile_refresh_backlog",
    "Stored customers whose stored profile scores are not current (new or changed record, another version "
    "served), as last counted by the refresher holding the lease",
    multiprocess_mode="livemostrecent",
)
PROFILE_REFRESHED = Counter(
    "clm_profile_refreshed_total", "Customers whose profile scores the background refresher stored"
)
PROFILE_REFRESH_LEASE = Gauge(
    "clm_profile_refresh_lease",
    "1 in the process holding the profile refresher's lease (summed over the workers: 1 in one of them, or 0 "
    "while another replica holds it)",
    multiprocess_mode="livesum",
)
PROFILE_REFRESH_FAILURES = Counter(
    "clm_profile_refresh_failures_total",
    "Refresher checks or batches that failed (database or registry unavailable, ...) and will be retried",
)
MODEL_INFO = Gauge(
    "clm_model_info",
    "Model versions being served (1 per loaded version)",
    ["model", "version", "alias"],
    multiprocess_mode="liveall",
)
MODEL_LOAD_FAILURES = Counter(
    "clm_model_load_failures_total",
    "Model versions refused: failed to load or to score their example",
    ["model", "version"],
)
SCORED_RECORDS = Counter("clm_scored_records_total", "Records scored", ["model", "version"])
RECORD_FIELDS = Counter(
    "clm_record_fields_total",
    "Fields of scored records the model could not use: `unknown` (not its fields) or `missing` (its fields "
    "absent or null); a rise says a client sends other names than the model's",
    ["model", "version", "kind"],
)
CHURN_PROBABILITY = Histogram(
    "clm_churn_probability", "Churn probabilities served", ["model", "version"], buckets=PROBABILITY_BUCKETS
)
# Lifetime values served, in the line's currency: most shop customers sit below a few thousand.
LIFETIME_VALUE = Histogram(
    "clm_lifetime_value",
    "Lifetime values served by value models",
    ["model", "version"],
    buckets=(10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000),
)
# Outbound conversion is rare (11 %): finer buckets at the low end show where most leads sit.
LEAD_PROBABILITY_BUCKETS = (0.01, 0.02, 0.05, *PROBABILITY_BUCKETS)
LEAD_CONVERSION_PROBABILITY = Histogram(
    "clm_lead_conversion_probability",
    "Lead conversion probabilities served",
    ["model", "version"],
    buckets=LEAD_PROBABILITY_BUCKETS,
)
LEAD_GRADES = Counter(
    "clm_lead_grades_total",
    "Leads graded, by lead line, served version and grade",
    ["line", "version", "grade"],
)
DIAGNOSIS_GAPS = Histogram(
    "clm_diagnosis_gaps",
    "Gaps reported per diagnosed listing",
    ["model", "version"],
    buckets=(0, 1, 2, 3, 5, 8, 13),
)

PRODUCT_OFFERS = Counter(
    "clm_product_offers_total",
    "Cross-sell offers returned, by product and rank",
    ["model", "version", "product", "rank"],
)
PRODUCT_PROPENSITY = Histogram(
    "clm_product_propensity",
    "Propensities of the offers returned",
    ["model", "version", "product"],
    buckets=PROBABILITY_BUCKETS,
)
PRODUCT_NO_OFFER = Counter(
    "clm_product_no_offer_total",
    "Customers matched with nothing to offer (own or may not buy every one)",
    ["model", "version"],
)

MODEL_SWAPS = Counter(
    "clm_model_swaps_total", "Versions swapped in after loading and passing their check", ["model", "alias"]
)
REGISTRY_POLLS = Counter(
    "clm_registry_polls_total",
    "Registry polls per model: ok, or unavailable (scoring goes on with what is loaded)",
    ["model", "outcome"],
)
SHADOW_LABELS = ["model", "champion_version", "challenger_version"]
SHADOW_RECORDS = Counter(
    "clm_shadow_records_total", "Records scored by both the champion and the challenger", SHADOW_LABELS
)
SHADOW_SCORE_DIFFERENCE = Histogram(
    "clm_shadow_score_difference",
    "|champion score - challenger score| per record (per product where a record has several)",
    SHADOW_LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
SHADOW_LABEL_CHANGES = Counter(
    "clm_shadow_label_changes_total",
    "Records whose grade, risk level or the like differs between the champion and the challenger",
    SHADOW_LABELS,
)
SHADOW_SKIPPED = Counter(
    "clm_shadow_skipped_total",
    "Sampled requests not shadowed: busy (too many running) or failed (the challenger raised)",
    ["model", "reason"],
)


def render() -> tuple[bytes, str]:
    """The exposition text: this process's registry, or every worker's when multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def observe_many(histogram: Any, values: npt.NDArray[np.float64]) -> None:
    """`histogram.observe(v)` for every value of a batch, in one update per bucket.

    Observing 1,000 scores one by one cost 5 ms in multiprocess mode (two locked writes to a shared file each),
    a tenth of a 1,000-record batch. prometheus_client has no batch call, so this counts the values per bucket
    with numpy and adds each count to its bucket as `observe` would (a value goes to the first bucket whose
    bound is >= it). It reads the child's `_upper_bounds`, `_buckets` and `_sum`: tests/test_metrics.py checks
    that the exported histogram equals the one-by-one observations, so a library change that breaks this fails
    there.
    """
    if len(values) == 0:
        return
    bounds = np.asarray(histogram._upper_bounds)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    histogram._sum.inc(float(np.sum(values)))
    for bucket, count in enumerate(counts.tolist()):
        if count:
            histogram._buckets[bucket].inc(count)
