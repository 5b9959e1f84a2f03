"""Profile scores kept per customer by the batch job.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profile_scores",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("features_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("churn_version", sa.Integer(), nullable=False),
        sa.Column("products_version", sa.Integer(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_profile_scores_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_profile_scores")),
    )


def downgrade() -> None:
    op.drop_table("profile_scores")
