"""Rules every batch scoring route shares."""

from __future__ import annotations

from typing import Any

from app.errors import BatchTooLarge


def check_batch_size(records: list[Any], limit: int, field: str) -> None:
    if len(records) > limit:
        raise BatchTooLarge(
            f"{field} holds {len(records)} records; at most {limit} per request",
            [{"path": field, "message": f"at most {limit} records"}],
        )
