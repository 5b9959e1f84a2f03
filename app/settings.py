"""The service's settings: one validated class, read from `CLM_*` variables (and MLFLOW_TRACKING_URI)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from model_registry.settings import RegistrySettings

Scope = Literal["score", "admin"]
DEMO_KEY = "demo-key"


class Settings(RegistrySettings):
    model_config = SettingsConfigDict(env_prefix="CLM_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface to bind; loopback unless told otherwise.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port to serve on.")
    workers: int = Field(
        default=1, ge=1, description="Worker processes (`python -m app`); each loads every model."
    )
    api_keys: dict[str, list[Scope]] = Field(
        default={DEMO_KEY: ["score", "admin"]},
        description='JSON map of API key to scopes, e.g. {"k1": ["score"]}. The default is the local demo key.',
    )
    models: list[str] = Field(
        default=[
            "clm-churn",
            "clm-churn-card",
            "clm-leads-inbound",
            "clm-leads-outbound",
            "clm-products",
            "clm-diagnosis",
        ],
        description="Registered models to serve; /readyz is 503 until each has its champion loaded.",
    )
    alias: str = Field(default="champion", description="The alias that is served.")
    max_batch: int = Field(default=1000, ge=1, description="Most records in one scoring request (413 above).")
    exact_contributions: bool = Field(
        default=True,
        description="Reasons from exact TreeSHAP (default) or XGBoost's faster approximation (see README).",
    )
    booster_threads: int = Field(default=1, ge=1, description="Threads per booster in each worker process.")
    log_level: str = Field(default="INFO", description="Python log level.")
    reload_interval_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often each worker polls the registry for alias moves and swaps in what they point "
        "to; 0 turns polling off (then only POST /v1/admin/models/{name}/reload changes what is served).",
    )
    shadow_enabled: bool = Field(
        default=False,
        description="Load each model's challenger too and score a share of requests with it after replying.",
    )
    shadow_share: float = Field(
        default=0.1, ge=0, le=1, description="Share of scoring requests also scored by the challenger."
    )
    shadow_max_pending: int = Field(
        default=4,
        ge=1,
        description="Shadow scorings running at once per worker at most; a sampled request beyond that is "
        "not shadowed (counted in clm_shadow_skipped_total), so shadowing never builds a backlog.",
    )
    database_url: str = Field(
        default="sqlite:///var/clm.db",
        description="Customer store, prediction log and outcomes: SQLite here, postgresql+psycopg://... in production.",
    )
    prediction_log_capacity: int = Field(
        default=100_000,
        ge=1,
        description="Prediction-log rows held in memory while the database is slow or down; beyond, rows are "
        "dropped and counted (clm_prediction_log_dropped_total).",
    )
    prediction_log_batch: int = Field(default=1000, ge=1, description="Most prediction-log rows per write.")
    prediction_log_interval: float = Field(
        default=1.0, gt=0, description="Seconds between prediction-log writes (sooner when a batch is full)."
    )
    profile_memo_size: int = Field(
        default=10_000,
        ge=0,
        description="Customer profiles whose scores each worker remembers (keyed by record version and model "
        "versions, so never stale); 0 scores every view afresh.",
    )
    prediction_log_shutdown_timeout: float = Field(
        default=10.0, ge=0, description="Seconds the shutdown waits for the prediction log to be written."
    )

    @field_validator("api_keys")
    @classmethod
    def _keys_not_empty(cls, value: dict[str, list[Scope]]) -> dict[str, list[Scope]]:
        if not value:
            raise ValueError("at least one API key is needed")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
