"""GET /healthz and GET /readyz."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.common import ErrorInfo


class Liveness(BaseModel):
    status: Literal["ok"]


class DatabaseState(BaseModel):
    status: Literal["ok", "unavailable", "not_migrated"]
    message: str


class Readiness(BaseModel):
    status: Literal["ready"]
    models: dict[str, int] = Field(description="The version each configured model serves")
    database: DatabaseState = Field(description="Reported; it does not decide readiness")


class NotReady(BaseModel):
    """The error envelope, with the database's state beside it."""

    error: ErrorInfo = Field(description="code not_ready; one detail per model not loaded, saying why")
    database: DatabaseState
