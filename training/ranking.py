"""Ranking quality of a cross-sell model: hide one product a customer owns and see where it is ranked.

For each holdout customer owning at least one product, one owned product is set to "not owned" (the customer
as it was before buying it). The product is then among that customer's candidates (eligible, not owned) and a
good ranking puts it first. Hit rate at k: the share of customers whose hidden product ranks within the top k.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from model_registry.catalogue import ProductCatalogue

CUTOFFS = (1, 3)


@dataclass(frozen=True)
class HiddenCase:
    customer_id: Any
    record: dict[str, Any]
    """The customer's record with the hidden product set to not owned."""
    hidden: str
    candidates: tuple[str, ...]
    """Products the customer may be offered once the hidden one is "not owned" (the hidden one included)."""


def hidden_product(customer_id: Any, owned: list[str]) -> str:
    """Deterministic by customer, so every retrain hides the same product and versions compare."""
    return owned[int(hashlib.sha256(f"hidden:{customer_id}".encode()).hexdigest(), 16) % len(owned)]


def hidden_cases(
    catalogue: ProductCatalogue, records: list[dict[str, Any]], ids: list[Any]
) -> list[HiddenCase]:
    cases = []
    for customer_id, record in zip(ids, records, strict=True):
        owned = [p.name for p in catalogue.products if p.owns(record)]
        if not owned:
            continue
        hidden = hidden_product(customer_id, owned)
        product = next(p for p in catalogue.products if p.name == hidden)
        before = {**record, hidden: product.not_owned}
        candidates = tuple(p.name for p in catalogue.products if p.may_offer(before))
        cases.append(HiddenCase(customer_id, before, hidden, candidates))
    return cases


def hit_rates(
    cases: list[HiddenCase], scores: Sequence[Mapping[str, float]], prefix: str
) -> dict[str, float]:
    """Share of cases whose hidden product is within the top k when its candidates are sorted by their score,
    highest first (ties keep catalogue order)."""
    ranks = np.array([_rank(case, case_scores) for case, case_scores in zip(cases, scores, strict=True)])
    return {f"{prefix}hit_at_{k}": float(np.mean(ranks <= k)) for k in CUTOFFS}


def ranking_figures(
    cases: list[HiddenCase],
    propensity: Mapping[str, npt.NDArray[np.floating]],
    popularity: Mapping[str, float],
) -> dict[str, float]:
    """Hit rates of the model (`propensity[product][case index]`), of ranking by popularity, and of chance."""
    candidates = np.array([len(c.candidates) for c in cases], dtype=float)
    figures = {"customers": float(len(cases)), "mean_candidates": float(candidates.mean())}
    model_scores = [{p: float(propensity[p][i]) for p in case.candidates} for i, case in enumerate(cases)]
    figures.update(hit_rates(cases, model_scores, ""))
    figures.update(hit_rates(cases, [popularity] * len(cases), "popularity_"))
    for k in CUTOFFS:
        figures[f"random_hit_at_{k}"] = float(np.mean(np.minimum(k, candidates) / candidates))
    return figures


def _rank(case: HiddenCase, scores: Mapping[str, float]) -> int:
    ordered = sorted(case.candidates, key=lambda p: -scores[p])
    return ordered.index(case.hidden) + 1
