"""Customer value of a shop's customers: expected purchases, P(alive), spend per purchase, lifetime value and
the value tier, by the line's BG/NBD and Gamma-Gamma version (model_registry/value.py).

A customer comes by id (its summary from the line's store), as a summary, or as transactions, which are
summarised here by the version's own rules (model_registry/value_summary.py) before anything else happens.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from app import metrics
from app.errors import InvalidRecords
from app.prediction_log import Prediction
from app.schemas.value import ValueCustomer, ValueRequest, ValueResponse
from app.scoring.runtime.scorer import Scorer, field_errors_for_ids
from app.scoring.runtime.shadow import compare_fields
from app.scoring.use_cases.base import Record, UseCase
from model_registry.value import ValueModel
from model_registry.value_summary import SUMMARY_FIELDS, SummaryError, Transaction, summarise
from model_registry.value_tiers import TierCutoffs

REQUIRED = ("frequency", "recency", "t")


def from_transactions(scorer: Scorer, customers: list[ValueCustomer], path_prefix: str) -> list[Record]:
    """Each customer as the record the model reads: a summary or an id as sent, transactions summarised."""
    rules = scorer.metadata["summary_rules"]
    today = datetime.now(UTC).date()
    records: list[Record] = []
    problems: list[dict[str, str]] = []
    for row, customer in enumerate(customers):
        record = customer.model_dump(exclude_unset=True, exclude={"transactions", "as_of"})
        path = f"{path_prefix}[{row}]"
        if customer.transactions is None:
            if customer.as_of is not None:
                problems.append({"path": f"{path}.as_of", "message": "as_of goes with transactions"})
            records.append(record)
            continue
        sent = [name for name in SUMMARY_FIELDS if record.get(name) is not None]
        if sent:
            problems.append(
                {
                    "path": f"{path}.transactions",
                    "message": f"give transactions or a summary ({sent}), not both",
                }
            )
            continue
        as_of = customer.as_of or max(t.date for t in customer.transactions)
        found = _transaction_problems(customer, as_of, today, path)
        if found:
            problems += found
            continue
        items = [Transaction(t.date, t.amount, t.is_return) for t in customer.transactions]
        try:
            summary = summarise(items, as_of, rules["unit_days"], rules["current_days"])
        except SummaryError as exc:
            problems.append({"path": f"{path}.transactions", "message": str(exc)})
            continue
        records.append({**record, **summary.record()})
    if problems:
        raise InvalidRecords(f"{len(problems)} customer(s) cannot be summarised", problems)
    return records


def _transaction_problems(
    customer: ValueCustomer, as_of: date, today: date, path: str
) -> list[dict[str, str]]:
    assert customer.transactions is not None
    problems = []
    if as_of > today:
        problems.append({"path": f"{path}.as_of", "message": f"{as_of} is in the future"})
    sales = [t.date for t in customer.transactions if not t.is_return]
    if sales and as_of < min(sales):
        message = f"the cut-off {as_of} is before the first purchase ({min(sales)})"
        problems.append({"path": f"{path}.as_of", "message": message})
    for index, item in enumerate(customer.transactions):
        where = f"{path}.transactions[{index}]"
        if item.amount < 0 and not item.is_return:
            problems.append(
                {"path": f"{where}.amount", "message": "a negative amount that is not a return (is_return)"}
            )
        elif item.amount > 0 and item.is_return:
            problems.append({"path": f"{where}.amount", "message": "a return's amount must be negative"})
        if item.date > as_of:
            problems.append({"path": f"{where}.date", "message": f"{item.date} is after the cut-off {as_of}"})
    return problems


def score_value(scorer: Scorer, records: list[Record], path_prefix: str) -> list[dict[str, Any]]:
    model = ValueModel.from_metadata(scorer.metadata["value_model"])
    cutoffs = TierCutoffs.from_metadata(scorer.metadata["tiers"])
    bad_ids = field_errors_for_ids(records, scorer.id_field, path_prefix)
    if bad_ids:
        raise InvalidRecords.from_field_errors(bad_ids)
    summaries = _checked_summaries(records, path_prefix)
    x, t_x, big_t, zbar = (np.array([s[i] for s in summaries], dtype=np.float64) for i in range(4))
    months = model.terms.horizon_months
    with np.errstate(all="ignore"):
        purchases = model.purchases.expected_purchases(months * model.terms.units_per_month, x, t_x, big_t)
        alive = model.purchases.p_alive(x, t_x, big_t)
        spend = model.spend.expected_spend(x, zbar)
        lifetime = model.lifetime_value(x, t_x, big_t, zbar)
    _refuse_out_of_range(path_prefix, purchases, alive, spend, lifetime)
    metrics.SCORED_RECORDS.labels(scorer.name, str(scorer.version)).inc(len(records))
    metrics.observe_many(metrics.LIFETIME_VALUE.labels(scorer.name, str(scorer.version)), lifetime)
    results = []
    for row, record in enumerate(records):
        value = float(lifetime[row])
        ranked = value if cutoffs.basis == "lifetime_value" else record.get("past_spend")
        results.append(
            {
                "customer_id": record.get(scorer.id_field),
                "summary": {
                    "frequency": int(x[row]),
                    "recency": float(t_x[row]),
                    "t": float(big_t[row]),
                    "monetary_value": float(zbar[row]),
                    "current_value": record.get("current_value"),
                    "past_spend": record.get("past_spend"),
                },
                "horizon_months": months,
                "annual_discount_rate": model.terms.annual_discount_rate,
                "expected_purchases": round(float(purchases[row]), 6),
                "probability_alive": round(float(alive[row]), 6),
                "expected_spend_per_purchase": round(float(spend[row]), 6),
                "lifetime_value": round(value, 2),
                "current_value": record.get("current_value"),
                "value_tier": None if ranked is None else cutoffs.tier(ranked),
                "tier_basis": cutoffs.basis,
                "tier_reason": _tier_reason(cutoffs, ranked),
            }
        )
    return results


def _tier_reason(cutoffs: TierCutoffs, ranked: float | None) -> str:
    if ranked is None:
        return "past spend unknown: no tier"
    reason = cutoffs.reason(ranked)
    if cutoffs.basis == "past_spend":  # the version's lifetime value did no better: it says so
        reason += " (lifetime value ranked the holdout no better than past spend)"
    return reason


def _checked_summaries(records: list[Record], path_prefix: str) -> list[tuple[float, float, float, float]]:
    """(x, t_x, T, zbar) per record; a summary the models cannot read is a 422 naming the field."""
    problems = []
    summaries = []
    for row, record in enumerate(records):
        path = f"{path_prefix}[{row}]"
        absent = [name for name in REQUIRED if record.get(name) is None]
        if absent:
            problems += [
                {"path": f"{path}.{name}", "message": "needed to score (or send transactions)"}
                for name in absent
            ]
            continue
        x, t_x, big_t = (float(record[name]) for name in REQUIRED)
        zbar = float(record.get("monetary_value") or 0.0)
        if t_x > big_t:
            problems.append({"path": f"{path}.recency", "message": f"recency {t_x} is after t {big_t}"})
        elif x == 0 and t_x != 0:
            problems.append(
                {"path": f"{path}.recency", "message": "recency must be 0 with no repeat purchase"}
            )
        elif x > 0 and zbar <= 0:
            problems.append(
                {"path": f"{path}.monetary_value", "message": "needed (above 0) with repeat purchases"}
            )
        summaries.append((x, t_x, big_t, zbar))
    if problems:
        raise InvalidRecords(f"{len(problems)} field(s) are invalid", problems)
    return summaries


def _refuse_out_of_range(path_prefix: str, *figures: np.ndarray[Any, Any]) -> None:
    bad = sorted({int(row) for figure in figures for row in np.flatnonzero(~np.isfinite(figure))})
    if bad:
        message = "outside the range the model computes: a summary far beyond its data"
        raise InvalidRecords(
            f"{len(bad)} customer(s) cannot be scored",
            [{"path": f"{path_prefix}[{row}]", "message": message} for row in bad],
        )


def value_predictions(results: list[dict[str, Any]]) -> list[Prediction]:
    return [
        Prediction(r["customer_id"], r["lifetime_value"], r["value_tier"], "lifetime_value") for r in results
    ]


def _prepare(scorer: Scorer, customers: list[Any], body: ValueRequest) -> list[Record]:
    return from_transactions(scorer, customers, "customers")


VALUE = UseCase(
    name="value",
    path="/v1/value/score",
    operation_id="score_value",
    summary="Expected purchases, P(alive), spend per purchase, lifetime value and value tier for customers",
    description="Score 1–1,000 customers of a value line (default: retail) by `customer_id` (the line's "
    "store), by summary, or by transactions; results in request order.",
    request=ValueRequest,
    response=ValueResponse,
    records_field="customers",
    score=lambda scorer, customers, body: score_value(scorer, customers, "customers"),
    predictions=lambda _, results: value_predictions(results),
    compare=compare_fields("lifetime_value", "value_tier"),
    from_store=True,
    typed_records=True,
    prepare=_prepare,
)
