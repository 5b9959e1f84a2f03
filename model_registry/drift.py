"""Reference profiles and drift: what a version was trained on, and how far what it sees now has moved.

Training stores a reference profile with each version (`reference_profile`, the bundle's
`reference_profile.json`): for each field the shares of its training rows in bins — a numeric field's deciles
of its training values (edges at its quantiles, repeated ones merged), a categorical field's categories seen in
training plus "other" (unseen) — and the share missing as a bin of its own; and the same for the scores of
the validation rows. Serving counts its sampled records in the very same bins and compares with the
population stability index, PSI = sum over bins of (current - reference) * ln(current / reference), shares
floored at EPSILON so an empty bin counts without being infinite. Common practice reads it as: below 0.1
stable, 0.1-0.25 watch, 0.25 and above act.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from model_registry.contract import FeatureContract

REFERENCE_FILE = "reference_profile.json"
BINS = 10
EPSILON = 1e-4  # a bin's share floor: an empty bin on one side adds a large but finite term
MISSING, OTHER = "missing", "other"


def _numeric(values: Iterable[Any]) -> npt.NDArray[np.float64]:
    """Numbers as floats, anything missing (None, NaN, not a number) as NaN."""
    return np.array(
        [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in values],
        dtype=np.float64,
    )


def numeric_edges(values: npt.NDArray[np.float64], bins: int = BINS) -> list[float]:
    """Inner bin edges at the deciles of the present values; a value equal to an edge goes to the bin above."""
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return []
    quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
    return sorted({float(q) for q in quantiles})


def numeric_shares(values: npt.NDArray[np.float64], edges: Sequence[float]) -> list[float]:
    """Shares per bin, then the share missing (the last entry); empty input: all zeros."""
    if len(values) == 0:
        return [0.0] * (len(edges) + 2)
    missing = np.isnan(values)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges), values[~missing], side="right"), minlength=len(edges) + 1
    )
    return [*(counts / len(values)).tolist(), float(missing.mean())]


def category_shares(values: Sequence[Any], categories: Sequence[str]) -> list[float]:
    """Shares per category, then "other" (a value never seen in training), then missing."""
    if len(values) == 0:
        return [0.0] * (len(categories) + 2)
    position = {category: i for i, category in enumerate(categories)}
    counts = np.zeros(len(categories) + 2)
    for value in values:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            counts[-1] += 1
        else:
            counts[position.get(value if isinstance(value, str) else str(value), len(categories))] += 1
    return (counts / len(values)).tolist()  # type: ignore[no-any-return]


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    expected = np.maximum(np.asarray(reference, dtype=np.float64), EPSILON)
    actual = np.maximum(np.asarray(current, dtype=np.float64), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _columns(contract: FeatureContract, records: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Each feature's values over the records as the model reads them (derived fields filled in)."""
    rows = [contract.with_derived(record) for record in records] if contract.derived else records
    return {feature.name: [row.get(feature.name) for row in rows] for feature in contract.features}


def reference_profile(
    contract: FeatureContract, records: Sequence[dict[str, Any]], scores: npt.ArrayLike
) -> dict[str, Any]:
    """The reference a version is judged against: its training records' fields and its validation scores."""
    fields: dict[str, Any] = {}
    columns = _columns(contract, records)
    for feature in contract.features:
        values = columns[feature.name]
        if feature.kind == "numeric":
            numbers = _numeric(values)
            edges = numeric_edges(numbers)
            fields[feature.name] = {
                "kind": "numeric",
                "edges": edges,
                "shares": numeric_shares(numbers, edges),
            }
        else:
            categories = list(feature.categories)
            fields[feature.name] = {
                "kind": "categorical",
                "categories": categories,
                "shares": category_shares(values, categories),
            }
    score_values = np.asarray(scores, dtype=np.float64)
    score_edges = numeric_edges(score_values)
    return {
        "rows": len(records),
        "score_rows": len(score_values),
        "fields": fields,
        "score": {
            "kind": "numeric",
            "edges": score_edges,
            "shares": numeric_shares(score_values, score_edges),
        },
    }


def bin_labels(reference: dict[str, Any]) -> list[str]:
    """A field's bins in words, in the order of its shares."""
    if reference["kind"] == "categorical":
        return [*reference["categories"], OTHER, MISSING]
    edges = reference["edges"]
    if not edges:
        return ["all", MISSING]
    labels = [f"< {edges[0]:g}"]
    labels += [f"{low:g} to < {high:g}" for low, high in itertools.pairwise(edges)]
    return [*labels, f">= {edges[-1]:g}", MISSING]


def status(value: float | None, watch: float, act: float) -> str:
    if value is None:
        return "no data"
    return "act" if value >= act else "watch" if value >= watch else "stable"


def drift(
    reference: dict[str, Any],
    contract: FeatureContract,
    records: Sequence[dict[str, Any]],
    scores: Sequence[float],
    *,
    watch: float,
    act: float,
) -> dict[str, Any]:
    """Each field's PSI and shares (reference and current), the share of fields at or above `watch`, and the
    scores' PSI. With no records every PSI is None."""
    columns = _columns(contract, records)
    fields = []
    for name, field_reference in reference["fields"].items():
        values = columns.get(name, [])
        if field_reference["kind"] == "numeric":
            current = numeric_shares(_numeric(values), field_reference["edges"])
        else:
            current = category_shares(values, field_reference["categories"])
        value = psi(field_reference["shares"], current) if records else None
        fields.append(
            {
                "field": name,
                "kind": field_reference["kind"],
                "psi": value,
                "status": status(value, watch, act),
                "bins": bin_labels(field_reference),
                "reference": field_reference["shares"],
                "current": current,
            }
        )
    fields.sort(key=lambda f: -(f["psi"] or 0.0))
    score_reference = reference["score"]
    score_current = numeric_shares(np.asarray(scores, dtype=np.float64), score_reference["edges"])
    score_psi = psi(score_reference["shares"], score_current) if scores else None
    drifting = sum(1 for f in fields if f["psi"] is not None and f["psi"] >= watch)
    return {
        "records": len(records),
        "reference_rows": reference["rows"],
        "thresholds": {"watch": watch, "act": act},
        "share_drifting": drifting / len(fields) if records and fields else None,
        "score": {
            "psi": score_psi,
            "status": status(score_psi, watch, act),
            "bins": bin_labels(score_reference),
            "reference": score_reference["shares"],
            "current": score_current,
        },
        "fields": fields,
    }
