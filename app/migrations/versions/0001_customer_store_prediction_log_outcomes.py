"""Customer store, prediction log, outcomes.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORY = sa.String(length=64)
CATEGORIES = (
    "gender",
    "partner",
    "dependents",
    "phone_service",
    "multiple_lines",
    "internet_service",
    "online_security",
    "online_backup",
    "device_protection",
    "tech_support",
    "streaming_tv",
    "streaming_movies",
    "contract",
    "paperless_billing",
    "payment_method",
)


def _timestamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        *(sa.Column(name, CATEGORY, nullable=True) for name in CATEGORIES),
        sa.Column("senior_citizen", sa.Integer(), nullable=True),
        sa.Column("tenure", sa.Integer(), nullable=True),
        sa.Column("monthly_charges", sa.Float(), nullable=True),
        sa.Column("total_charges", sa.Float(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    op.create_table(
        "outcomes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=False),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("happened", sa.Boolean(), nullable=False),
        _timestamp("observed_at"),
        _timestamp("recorded_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
        sa.UniqueConstraint("event", "record_id", "item", name=op.f("uq_outcomes_event_record_id_item")),
    )
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        _timestamp("served_at"),
        sa.Column("route", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=True),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_log")),
    )
    op.create_index(
        op.f("ix_prediction_log_model_record_id_item"), "prediction_log", ["model", "record_id", "item"]
    )
    op.create_index(op.f("ix_prediction_log_served_at"), "prediction_log", ["served_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_prediction_log_served_at"), table_name="prediction_log")
    op.drop_index(op.f("ix_prediction_log_model_record_id_item"), table_name="prediction_log")
    op.drop_table("prediction_log")
    op.drop_table("outcomes")
    op.drop_table("customers")
