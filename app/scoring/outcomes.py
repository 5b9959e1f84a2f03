"""Outcomes fed back from the CRM, and the realised performance of the versions that scored those records.

Which outcome judges which model: customer_churned judges clm-churn, lead_converted with line L judges
clm-leads-L, offer_accepted of product P judges clm-products' score for P.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.db import Database
from app.errors import InvalidRecords, NotFound
from app.repositories import outcomes as outcome_repo
from app.repositories import predictions as prediction_repo
from app.repositories.predictions import GroupCounts, VersionCounts
from app.schemas.outcomes import QUALIFIER, OutcomeIn
from app.scoring.runtime.loaded import LoadedModels

CUSTOMER_CHURNED = "customer_churned"


def check_items(outcomes: Sequence[OutcomeIn], models: LoadedModels) -> None:
    """Outcomes name products of the served products model's catalogue and served lead lines, else a 422 per
    outcome listing the valid ones (a product model configured but not loaded yet: 503)."""
    errors = []
    products: list[str] | None = None
    for row, outcome in enumerate(outcomes):
        if outcome.event == "offer_accepted":
            if products is None:
                products = _served_products(models)
            if outcome.product not in products:
                errors.append(_unknown(row, "product", products, "no products model is served"))
        elif outcome.event == "lead_converted":
            lines = [line for line in models.lines("leads") if line is not None]
            if outcome.line not in lines:
                errors.append(_unknown(row, "line", lines, "no lead line is served"))
    if errors:
        raise InvalidRecords(f"{len(errors)} outcome(s) name a product or line not served", errors)


def _served_products(models: LoadedModels) -> list[str]:
    """The products of the default products line's catalogue; none when no products model is served (one
    configured but not loaded yet: 503)."""
    try:
        return models.for_line("products", None).catalogue.names
    except NotFound:
        return []


def _unknown(row: int, field: str, valid: list[str], none_message: str) -> dict[str, str]:
    message = f"not a served {field}: one of {', '.join(valid)}" if valid else none_message
    return {"path": f"outcomes[{row}].{field}", "message": message}


def store_outcomes(database: Database, outcomes: Sequence[OutcomeIn]) -> outcome_repo.RecordCounts:
    """record_outcomes in a transaction of its own (run on the database's threads: Database.run)."""
    with database.session() as session:
        return record_outcomes(session, outcomes)


def performance_of(database: Database, model: str, judge: Judge) -> tuple[str, list[dict[str, Any]]]:
    with database.session() as session:
        return performance(session, model, judge)


def record_outcomes(session: Session, outcomes: Sequence[OutcomeIn]) -> outcome_repo.RecordCounts:
    facts = [
        outcome_repo.OutcomeIn(
            event=o.event,
            record_id=str(o.record_id),
            item=_item(o),
            happened=o.happened,
            observed_at=o.observed_at,
        )
        for o in outcomes
    ]
    return outcome_repo.record(session, facts)


def _item(outcome: OutcomeIn) -> str:
    """The product or lead line the event is about; '' for an event about the record alone."""
    qualifier = QUALIFIER.get(outcome.event)
    return str(getattr(outcome, qualifier)) if qualifier else ""


@dataclass(frozen=True)
class Judge:
    """The outcome that judges a model: its event, and the item outcomes must carry (None: the logged item)."""

    event: str
    item: str | None


def judge_of(model: str, models: LoadedModels) -> Judge:
    """By the use case and line the model serves: any churn line by recorded churn, a lead line by its
    conversions, the products by accepted offers. A model this worker does not serve (any more) is judged by
    its name, as the packaged models are named (`clm-churn…`, `clm-leads-<line>`, `clm-products`)."""
    use_case, line = models.line_of(model) or _packaged(model)
    if use_case == "churn":
        return Judge(CUSTOMER_CHURNED, "")
    if use_case == "leads" and line is not None:
        return Judge("lead_converted", line)
    if use_case == "products":
        return Judge("offer_accepted", None)
    raise NotFound(f"no outcome judges {model}: performance is reported for churn, lead and product models")


def _packaged(model: str) -> tuple[str, str | None]:
    if model.startswith("clm-leads-"):
        return "leads", model.removeprefix("clm-leads-")
    if model == "clm-churn" or model.startswith("clm-churn-"):
        return "churn", None
    return model.removeprefix("clm-"), None


def performance(session: Session, model: str, judge: Judge) -> tuple[str, list[dict[str, Any]]]:
    """The judging event, and per served version: realised ROC AUC, conversion and lift by label and by item.

    Counted by the database (app/repositories/predictions.py judged_counts): memory stays bounded by the number
    of versions and groups, whatever the size of the prediction log."""
    versions, labels, items = prediction_repo.judged_counts(session, model, judge.event, judge.item)
    return judge.event, [_version_figures(counts, labels, items) for counts in versions]


def _version_figures(
    counts: VersionCounts, labels: list[GroupCounts], items: list[GroupCounts]
) -> dict[str, Any]:
    rate = counts.positives / counts.records
    return {
        "version": counts.version,
        "records": counts.records,
        "positives": counts.positives,
        "positive_rate": rate,
        "roc_auc": roc_auc(counts),
        "top_decile_lift": counts.top_positives / counts.top_records / rate if rate > 0 else None,
        "by_label": _groups([g for g in labels if g.version == counts.version], rate),
        "by_item": _groups([g for g in items if g.version == counts.version], rate),
    }


def _groups(groups: list[GroupCounts], overall: float) -> list[dict[str, Any]]:
    """Conversion per group, the group with the highest mean score first (A before B, high before low)."""
    ranked = sorted(groups, key=lambda g: (-g.mean_score, g.group))
    return [
        {
            "group": g.group,
            "records": g.records,
            "positives": g.positives,
            "positive_rate": g.positives / g.records,
            "lift": g.positives / g.records / overall if overall > 0 else None,
        }
        for g in ranked
    ]


def roc_auc(counts: VersionCounts) -> float | None:
    """P(a positive scores above a negative), ties counting one half; None without both classes.

    From the positives' rank sum (Mann-Whitney): U = R - P(P+1)/2 counts, over every positive-negative pair,
    1 when the positive scores higher and 1/2 for a tie; AUC = U / (P N)."""
    positives, negatives = counts.positives, counts.records - counts.positives
    if positives == 0 or negatives == 0:
        return None
    wins = counts.positive_rank_sum - positives * (positives + 1) / 2
    return wins / (positives * negatives)
