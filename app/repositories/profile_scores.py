"""Profile scores kept per customer: which customers the batch job must (re)score, and saving what it scored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from app.models import Customer, StoredProfileScores
from app.repositories.customers import RECORD_COLUMNS, record_of
from app.repositories.upsert import insert_for

_CUSTOMERS = Customer.__table__
_SCORES = StoredProfileScores.__table__
# Every customer, with its stored scores when it has any.
_CUSTOMERS_AND_SCORES = _CUSTOMERS.outerjoin(_SCORES, _SCORES.c.customer_id == _CUSTOMERS.c.customer_id)


def _stale(churn_version: int, products_version: int | None) -> ColumnElement[bool]:
    """Customers with no stored scores, or scores made from another record or by other versions."""
    return or_(
        _SCORES.c.customer_id.is_(None),
        _SCORES.c.features_updated_at != _CUSTOMERS.c.updated_at,
        _SCORES.c.churn_version != churn_version,
        _SCORES.c.products_version.is_distinct_from(products_version),
    )


def count_stale(connection: Connection, churn_version: int, products_version: int | None) -> int:
    statement = (
        select(func.count()).select_from(_CUSTOMERS_AND_SCORES).where(_stale(churn_version, products_version))
    )
    return connection.execute(statement).scalar_one()


def stale(
    connection: Connection, churn_version: int, products_version: int | None, after: str, limit: int
) -> list[tuple[dict[str, Any], datetime]]:
    """The next `limit` stale customers by id after `after`: (record, its updated_at)."""
    statement = (
        select(*RECORD_COLUMNS, _CUSTOMERS.c.updated_at)
        .select_from(_CUSTOMERS_AND_SCORES)
        .where(and_(_CUSTOMERS.c.customer_id > after, _stale(churn_version, products_version)))
        .order_by(_CUSTOMERS.c.customer_id)
        .limit(limit)
    )
    return [(record_of(values), updated_at) for *values, updated_at in connection.execute(statement)]


def save(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert or replace the scores of each customer (rows: the columns of StoredProfileScores)."""
    if not rows:
        return
    statement = insert_for(connection, StoredProfileScores)
    replaced = {c.name: statement.excluded[c.name] for c in _SCORES.columns if c.name != "customer_id"}
    connection.execute(
        statement.on_conflict_do_update(index_elements=[_SCORES.c.customer_id], set_=replaced), rows
    )
