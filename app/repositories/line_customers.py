"""Customers of added lines (app/models/line_customer.py): read by id, upserted in batches of changed rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from app.models import LineCustomer, Outcome
from app.models.base import utcnow
from app.repositories import predictions
from app.repositories.customers import StoredCustomer, UpsertCounts, churn_recorded
from app.repositories.upsert import insert_for
from app.request_reads import Read, read_on

_TABLE = LineCustomer.__table__


_RECORDS = select(_TABLE.c.customer_id, _TABLE.c.record).where(
    _TABLE.c.line == bindparam("line"), _TABLE.c.customer_id.in_(bindparam("ids", expanding=True))
)


def records_read(line: str, customer_ids: Iterable[str]) -> Read[dict[str, dict[str, Any]]]:
    """The stored records of these customers of the line, by id (ids not in the store are left out)."""
    return Read(_RECORDS, {"line": line, "ids": list(dict.fromkeys(customer_ids))}, _records_by_id)


def _records_by_id(rows: Sequence[Sequence[Any]]) -> dict[str, dict[str, Any]]:
    return {customer_id: record for customer_id, record in rows}


def get_records(connection: Connection, line: str, customer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    return read_on(connection, records_read(line, customer_ids))


_FOR_PROFILE = (
    select(_TABLE.c.record, _TABLE.c.updated_at, Outcome.observed_at, predictions.SCORE_HISTORY)
    .outerjoin(Outcome, churn_recorded(_TABLE.c.customer_id))
    .where(_TABLE.c.line == bindparam("line"), _TABLE.c.customer_id == bindparam("customer_id"))
)


def profile_read(
    line: str, customer_id: str, churn_event: str, churn_model: str, history: int
) -> Read[StoredCustomer | None]:
    """The customer of the line, whether a churn outcome is recorded for it and its last `history` scores by the
    churn model, in one round trip. Profile scores are not stored ahead for added lines: they are scored on view
    (and remembered by each worker)."""
    params = {
        "line": line,
        "customer_id": customer_id,
        "event": churn_event,
        **predictions.history_params(churn_model, history),
    }
    return Read(_FOR_PROFILE, params, _stored_customer)


def _stored_customer(rows: Sequence[Sequence[Any]]) -> StoredCustomer | None:
    if not rows:
        return None
    record, updated_at, churned_at, history = rows[0]
    return StoredCustomer(record, updated_at, churned_at, None, predictions.history_of(history))


def upsert_many(session: Session, line: str, records: list[dict[str, Any]]) -> UpsertCounts:
    """Insert new customers of the line and rewrite those whose record differs; `updated_at` moves only then.

    JSON has no equality operator on PostgreSQL, so changes are found by comparing with the stored records
    here. Records must carry distinct customer ids."""
    if not records:
        return UpsertCounts(0, 0, 0)
    stored = get_records(session.connection(), line, (r["customer_id"] for r in records))
    now = utcnow()
    rows = [
        {"line": line, "customer_id": r["customer_id"], "record": r, "created_at": now, "updated_at": now}
        for r in records
        if stored.get(r["customer_id"]) != r
    ]
    if rows:
        statement = insert_for(session, LineCustomer)
        statement = statement.on_conflict_do_update(
            index_elements=[_TABLE.c.line, _TABLE.c.customer_id],
            set_={"record": statement.excluded.record, "updated_at": statement.excluded.updated_at},
        )
        session.execute(statement, rows)
    updated = sum(1 for row in rows if row["customer_id"] in stored)
    inserted = len(rows) - updated
    return UpsertCounts(inserted=inserted, updated=updated, unchanged=len(records) - len(rows))
