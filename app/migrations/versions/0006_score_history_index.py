"""The prediction log's index by record gains served_at: a customer's newest scores (the profile's trend) are read
from the index's end instead of sorting every score the customer ever had. On a large log the new index takes a
while to build, and PostgreSQL holds the log's writes until it is done: the services' log writers keep their rows
in memory meanwhile and write them after (up to CLM_PREDICTION_LOG_CAPACITY rows each).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ["model", "record_id", "item"]
NEW = [*OLD, "served_at"]


def upgrade() -> None:
    op.create_index(op.f("ix_prediction_log_model_record_id_item_served_at"), "prediction_log", NEW)
    op.drop_index(op.f("ix_prediction_log_model_record_id_item"), table_name="prediction_log")


def downgrade() -> None:
    op.create_index(op.f("ix_prediction_log_model_record_id_item"), "prediction_log", OLD)
    op.drop_index(op.f("ix_prediction_log_model_record_id_item_served_at"), table_name="prediction_log")
