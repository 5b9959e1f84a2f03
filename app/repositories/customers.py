"""Customers: read by id, and upsert in batches (changed rows only, so a re-load of the same file writes nothing)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from app.models import Customer, Outcome, StoredProfileScores
from app.models.base import utcnow
from app.models.customer import FEATURE_FIELDS, RECORD_FIELDS
from app.repositories import predictions
from app.repositories.upsert import insert_for
from app.request_reads import Read, read_on

# What made a customer's profile scores: the customer, its record's updated_at, the churn and product versions.
ScoresKey = tuple[str, datetime, int, int | None]


@dataclass(frozen=True)
class StoredScores:
    key: ScoresKey
    scores: dict[str, Any]  # {"churn": result, "offers": list or None}


@dataclass(frozen=True)
class StoredCustomer:
    record: dict[str, Any]  # the API record (field name -> value), the form the scorers read
    updated_at: datetime  # when the stored fields last changed
    churned_at: datetime | None  # when a recorded outcome says the customer left
    scores: StoredScores | None  # what the batch job (`clm score customers`) stored, current or not
    # Its last scores by the churn model, (served_at, version, score), newest first: the profile's trend.
    score_history: list[tuple[datetime, int, float]]


_CUSTOMERS = Customer.__table__
_SCORES = StoredProfileScores.__table__
# A customer's record read with Core: these columns, turned back into the record by record_of().
RECORD_COLUMNS = tuple(_CUSTOMERS.c[name] for name in RECORD_FIELDS)


def record_of(values: Sequence[Any]) -> dict[str, Any]:
    """The API record (field name -> value) from the values of RECORD_COLUMNS, in order."""
    return dict(zip(RECORD_FIELDS, values, strict=True))


_RECORDS = select(*RECORD_COLUMNS).where(_CUSTOMERS.c.customer_id.in_(bindparam("ids", expanding=True)))


def records_read(customer_ids: Iterable[str]) -> Read[dict[str, dict[str, Any]]]:
    """The stored records of these customers, by id (ids not in the store are left out)."""
    return Read(_RECORDS, {"ids": list(dict.fromkeys(customer_ids))}, _records_by_id)


def _records_by_id(rows: Sequence[Sequence[Any]]) -> dict[str, dict[str, Any]]:
    return {record["customer_id"]: record for record in map(record_of, rows)}


def get_records(connection: Connection, customer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    return read_on(connection, records_read(customer_ids))


def churn_recorded(customer_id: ColumnElement[str]) -> ColumnElement[bool]:
    """Joins a customer to its recorded churn outcome (the event named by the `event` parameter), if any."""
    return and_(
        Outcome.record_id == customer_id,
        Outcome.event == bindparam("event"),
        Outcome.item == "",
        Outcome.happened.is_(True),
    )


# Built once: the profile runs it on every call, and building a statement costs more than running it here.
# Core, not the ORM: one row of plain values is all the profile needs, and the ORM's session, identity map and
# object loading cost several times the query itself.
_FOR_PROFILE = (
    select(
        *RECORD_COLUMNS,
        _CUSTOMERS.c.updated_at,
        Outcome.observed_at,
        _SCORES.c.features_updated_at,
        _SCORES.c.churn_version,
        _SCORES.c.products_version,
        _SCORES.c.scores,
        predictions.SCORE_HISTORY,
    )
    .outerjoin(Outcome, churn_recorded(_CUSTOMERS.c.customer_id))
    .outerjoin(_SCORES, _SCORES.c.customer_id == _CUSTOMERS.c.customer_id)
    .where(_CUSTOMERS.c.customer_id == bindparam("customer_id"))
)


def profile_read(
    customer_id: str, churn_event: str, churn_model: str, history: int
) -> Read[StoredCustomer | None]:
    """The customer, whether a churn outcome is recorded for it, its stored scores and its last `history` scores
    by the churn model: one round trip."""
    params = {
        "customer_id": customer_id,
        "event": churn_event,
        **predictions.history_params(churn_model, history),
    }
    return Read(_FOR_PROFILE, params, _stored_customer)


def _stored_customer(rows: Sequence[Sequence[Any]]) -> StoredCustomer | None:
    if not rows:
        return None
    *values, updated_at, churned_at, scored_from, churn_version, products_version, scores, history = rows[0]
    record = record_of(values)
    stored = None
    if scores is not None:
        stored = StoredScores((record["customer_id"], scored_from, churn_version, products_version), scores)
    return StoredCustomer(record, updated_at, churned_at, stored, predictions.history_of(history))


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int
    unchanged: int


def upsert_many(session: Session, records: list[dict[str, Any]]) -> UpsertCounts:
    """Insert new customers and update those whose fields differ; `updated_at` moves only when something changed.

    Records must carry distinct customer ids (PostgreSQL refuses to touch one row twice in a statement).
    """
    if not records:
        return UpsertCounts(0, 0, 0)
    ids = [r["customer_id"] for r in records]
    existing = set(session.scalars(select(Customer.customer_id).where(Customer.customer_id.in_(ids))))
    now = utcnow()
    rows = [
        {
            **{name: r.get(name) for name in FEATURE_FIELDS},
            "customer_id": r["customer_id"],
            "created_at": now,
            "updated_at": now,
        }
        for r in records
    ]
    table = Customer.__table__
    statement = insert_for(session, Customer)
    excluded = statement.excluded
    changed = or_(*(table.c[name].is_distinct_from(excluded[name]) for name in FEATURE_FIELDS))
    # One statement executed for many rows: compiled once, sent in multi-row batches by SQLAlchemy.
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.customer_id],
        set_={**{name: excluded[name] for name in FEATURE_FIELDS}, "updated_at": excluded.updated_at},
        where=changed,
    ).returning(table.c.customer_id)
    written = set(session.scalars(statement, rows))
    inserted = len(written - existing)
    updated = len(written & existing)
    return UpsertCounts(inserted=inserted, updated=updated, unchanged=len(records) - inserted - updated)


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Customer)) or 0
