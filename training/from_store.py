"""`clm retrain NAME --from-store`: a training set from what the service scored and what happened after.

The rows are the service's own: every stored customer it scored by id is kept in full, as the model read it
when it scored (the `scored_records` table, written with the prediction log), and the outcomes the CRM
recorded (`outcomes`). A record joins an outcome of the model's event when the outcome was observed at or after
the score, and of a record's scorings before its outcome only the last one counts: the record as it was when
it was last scored before the outcome, never as it looked afterwards (point-in-time correct). Training reads
the two tables by SQL alone, as a spec's query does (training never imports the service).

The fixed holdout of EVALUATION.md stays out (its customers never train, so versions still compare on it);
of the other rows the newest outcomes (GATE_SHARE of them, by observed_at) are held out as the rows the
promotion gate compares the challenger and the champion on, and the rest train, with 1 in
`validation_share` of them (the spec's hash rule) for early stopping. The challenger reads the champion's
fields, with their kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Boolean, DateTime, bindparam, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from model_registry.contract import FeatureContract
from model_registry.registry import CHAMPION, ModelRegistry, VersionRef
from training.binary import train_binary_on
from training.data import DataError, Dataset, is_holdout, is_validation
from training.spec import ModelSpec

GATE_SHARE = 0.2
# The outcome event that judges each use case's scores, and its item ('' or the lead line).
EVENTS = {"churn": "customer_churned", "leads": "lead_converted"}

_ROWS = (
    text(
        """
    SELECT record_id, record, happened, observed_at, served_at FROM (
        SELECT s.record_id, s.record, o.happened, o.observed_at, s.served_at,
               ROW_NUMBER() OVER (PARTITION BY s.record_id ORDER BY s.served_at DESC, s.id DESC) AS latest
        FROM scored_records s
        JOIN outcomes o
          ON o.event = :event AND o.record_id = s.record_id AND o.item = :item
         AND s.served_at <= o.observed_at
        WHERE s.model = :model AND s.record_id IS NOT NULL AND s.served_at >= :since
    ) judged
    WHERE latest = 1
    ORDER BY observed_at, record_id
    """
    )
    .bindparams(bindparam("since", type_=DateTime()))
    .columns(happened=Boolean(), observed_at=DateTime(), served_at=DateTime())
)


class NotEnoughRows(Exception):
    """The store holds too few judged records (or positives) to train on."""


@dataclass(frozen=True)
class StoreRows:
    """The judged records, oldest outcome first."""

    record_ids: list[str]
    records: list[dict[str, Any]]
    targets: np.ndarray[Any, np.dtype[np.int8]]
    observed_at: list[datetime]
    served_at: list[datetime]


def read_store_rows(database_url: str, spec: ModelSpec, since: datetime | None) -> StoreRows:
    event = EVENTS.get(spec.use_case)
    if event is None or spec.kind != "binary":
        raise DataError(
            f"{spec.registered_model}: retraining from the store covers churn and lead lines only"
        )
    item = spec.line or "" if spec.use_case == "leads" else ""
    # SQLite keeps UTC timestamps without their zone: compare in UTC, read back as UTC.
    start = (since or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC)
    if database_url.startswith("sqlite"):
        start = start.replace(tzinfo=None)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                _ROWS,
                {"event": event, "item": item, "model": spec.registered_model, "since": start},
            ).all()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DataError(f"cannot read the service's records from its database: {reason}") from exc
    finally:
        engine.dispose()
    return StoreRows(
        record_ids=[row.record_id for row in rows],
        records=[json.loads(row.record) for row in rows],
        targets=np.array([1 if row.happened else 0 for row in rows], dtype=np.int8),
        observed_at=[_utc(row.observed_at) for row in rows],
        served_at=[_utc(row.served_at) for row in rows],
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def store_dataset(
    rows: StoreRows, champion: FeatureContract, spec: ModelSpec, *, min_rows: int, min_positives: int
) -> tuple[Dataset, dict[str, Any]]:
    """The dataset to train on (its holdout: the gate rows) and what it holds, or NotEnoughRows."""
    keep = np.array([not is_holdout(i) for i in rows.record_ids], dtype=bool)
    fixed_holdout = int((~keep).sum())
    ids = [i for i, kept in zip(rows.record_ids, keep, strict=True) if kept]
    targets = rows.targets[keep]
    observed = [at for at, kept in zip(rows.observed_at, keep, strict=True) if kept]
    served = [at for at, kept in zip(rows.served_at, keep, strict=True) if kept]
    positives = int(targets.sum())
    if len(ids) < min_rows or positives < min_positives:
        raise NotEnoughRows(
            f"{spec.registered_model}: the store holds {len(ids):,} scored records with an outcome recorded "
            f"after their score ({positives:,} positive), outside the fixed holdout; retraining needs at least "
            f"{min_rows:,} and {min_positives:,} positive (CLM_RETRAIN_MIN_ROWS, CLM_RETRAIN_MIN_POSITIVES). "
            "Score stored customers by id and record their outcomes (POST /v1/outcomes), then try again."
        )
    records = [r for r, kept in zip(rows.records, keep, strict=True) if kept]
    features = _features(records, champion)
    # Rows are oldest outcome first: the newest GATE_SHARE are the gate's.
    gate = np.zeros(len(ids), dtype=bool)
    gate[len(ids) - max(1, round(len(ids) * GATE_SHARE)) :] = True
    validation = np.array([is_validation(i, spec.training.validation_share) for i in ids], dtype=bool) & ~gate
    dataset = Dataset(
        features=features,
        target=targets,
        ids=pd.Series(ids),
        holdout=gate,
        validation=validation,
        dropped={champion.id_field: "record ID, not a property of the record"},
        derived=champion.derived,
    )
    first_gate = observed[int(np.argmax(gate))]
    source = {
        "kind": "store",
        "rows": len(ids),
        "positives": positives,
        "fixed_holdout_rows_left_out": fixed_holdout,
        "scored_from": min(served).isoformat(),
        "scored_until": max(served).isoformat(),
        "train_rows": int((~gate & ~validation).sum()),
        "validation_rows": int(validation.sum()),
        "gate_rows": (
            f"the {int(gate.sum()):,} newest outcomes recorded in the service's store (observed "
            f"{first_gate:%Y-%m-%d %H:%M} to {observed[-1]:%Y-%m-%d %H:%M} UTC, "
            f"{int(targets[gate].sum()):,} positive), held out from training"
        ),
    }
    return dataset, source


def _features(records: list[dict[str, Any]], contract: FeatureContract) -> pd.DataFrame:
    """The champion's fields of each record as the model read it (derived fields filled in), typed as its
    contract types them: a number column as float, a category column as text."""
    rows = [contract.with_derived(record) for record in records] if contract.derived else records
    columns = {}
    for feature in contract.features:
        values = [row.get(feature.name) for row in rows]
        if feature.kind == "numeric":
            columns[feature.name] = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        else:
            columns[feature.name] = pd.Series([None if v is None else str(v) for v in values], dtype="string")
    return pd.DataFrame(columns)


def retrain_from_store(
    spec: ModelSpec,
    registry: ModelRegistry,
    database_url: str,
    *,
    since: datetime | None,
    min_rows: int,
    min_positives: int,
) -> tuple[VersionRef, dict[str, float], dict[str, Any]]:
    """Train a challenger on the store's judged records with the champion's fields: the version, its figures
    on the gate rows and where its rows came from. DataError or NotEnoughRows when it cannot."""
    champion = registry.resolve(spec.registered_model, CHAMPION)
    if champion is None:
        raise DataError(
            f"{spec.registered_model} has no champion: train it from its data first (clm train); the "
            "challenger reads the champion's fields"
        )
    contract = registry.load(spec.registered_model, champion.version).contract
    rows = read_store_rows(database_url, spec, since)
    dataset, source = store_dataset(rows, contract, spec, min_rows=min_rows, min_positives=min_positives)
    ref, figures = train_binary_on(dataset, spec, registry, as_challenger=True, source=source)
    return ref, figures, source
