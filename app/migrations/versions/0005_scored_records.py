"""Scored records kept in full: a sample of all traffic (drift) and stored customers scored by id (retraining).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scored_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=True),
        sa.Column("sampled", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scored_records")),
    )
    op.create_index(op.f("ix_scored_records_model_served_at"), "scored_records", ["model", "served_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_scored_records_model_served_at"), table_name="scored_records")
    op.drop_table("scored_records")
