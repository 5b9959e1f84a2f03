"""Where the registry lives: shared by the training CLI and the service, both read from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLM_", extra="ignore")

    mlflow_tracking_uri: str = Field(
        default="sqlite:///var/mlflow.db",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "CLM_MLFLOW_TRACKING_URI"),
        description="MLflow tracking and registry store; the embedded default is a SQLite file under var/.",
    )
    artifact_root: Path = Field(
        default=Path("var/mlartifacts"),
        description="Where new experiments keep their artifacts (used only when an experiment is created).",
    )
