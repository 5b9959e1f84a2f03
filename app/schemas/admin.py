"""POST /v1/admin/models/{name}/reload."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ReloadResponse(BaseModel):
    name: str
    alias: str
    version: int = Field(description="The version this worker serves now")
    previous_version: int | None = Field(description="What it served before the call; null when nothing")
    changed: bool = Field(description="Whether the call swapped in another version")
    loaded_at: datetime = Field(description="When this worker loaded the version it serves")
