"""The service's settings: one validated class, read from `CLM_*` variables (and MLFLOW_TRACKING_URI)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from model_registry.settings import RegistrySettings

Scope = Literal["score", "outcomes", "admin"]
DEMO_KEY = "demo-key"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class Settings(RegistrySettings):
    model_config = SettingsConfigDict(env_prefix="CLM_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface to bind; loopback unless told otherwise.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port to serve on.")
    workers: int = Field(
        default=1, ge=1, description="Worker processes (`python -m app`); each loads every model."
    )
    api_keys: dict[str, list[Scope]] = Field(
        default={DEMO_KEY: ["score", "outcomes", "admin"]},
        description='JSON map of API key to scopes, e.g. {"k1": ["score"]}. The default is the local demo key, '
        "accepted on loopback only, and dropped as soon as digests are given.",
    )
    api_key_digests: dict[str, list[Scope]] = Field(
        default={},
        description="JSON map of the SHA-256 hex digest of an API key to its scopes: the deployment holds no "
        "key in clear (`printf %s KEY | sha256sum`).",
    )
    api_key_digests_file: Path | None = Field(
        default=None,
        description="A file holding the same JSON map of digests to scopes (a mounted secret); read at start, "
        "added to CLM_API_KEY_DIGESTS.",
    )
    models: list[str] = Field(
        default=[
            "clm-churn",
            "clm-churn-card",
            "clm-leads-inbound",
            "clm-leads-outbound",
            "clm-products",
            "clm-diagnosis",
            "clm-value-retail",
        ],
        description="Registered models to serve; /readyz is 503 until each has its champion loaded.",
    )
    alias: str = Field(default="champion", description="The alias that is served.")
    max_batch: int = Field(default=1000, ge=1, description="Most records in one scoring request (413 above).")
    # 1,000 full records measured as JSON: Telco churn 534-607 kB, X Education inbound leads 1.26-1.32 MB (the
    # first 1,000 rows; the 1,000 largest); 4 MiB leaves 3x for indentation and longer values.
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest request body in bytes (413 above, refused before it is read).",
    )
    exact_contributions: bool = Field(
        default=True,
        description="Reasons from exact TreeSHAP (default; tables built when a version loads) or XGBoost's "
        "approximation, which is no faster now (docs/architecture.md, Reasons).",
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
    database_statement_timeout: float = Field(
        default=5.0,
        gt=0,
        description="PostgreSQL: seconds a statement may run before the server ends it (statement_timeout).",
    )
    database_pool_timeout: float = Field(
        default=2.0, gt=0, description="Seconds a request waits for a pooled database connection."
    )
    database_connect_timeout: int = Field(
        default=3, ge=1, description="PostgreSQL: seconds to open a connection (connect_timeout)."
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
    profile_refresh: bool = Field(
        default=True,
        description="Keep stored profile scores current in the background (one process of all the workers and "
        "replicas sharing the database, the holder of its lease) after a promotion, a rollback or an ingest; "
        "false leaves it to `clm score customers`.",
    )
    profile_refresh_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between the refresher's checks: each worker tries for the lease, and the holder "
        "follows the registry for the profile's models and counts the customers whose stored scores are not "
        "current, then scores them.",
    )
    profile_refresh_batch: int = Field(
        default=250, ge=1, le=10_000, description="Customers the refresher scores and writes per transaction."
    )
    profile_refresh_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Added to the refresher thread's nice value (Linux), so requests come first while the CPU "
        "is busy and the refresh uses what is left; 0 runs it at the worker's priority.",
    )
    profile_refresh_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long the refresher's lease lasts unless renewed (every check and every batch): a "
        "holder that dies without giving it up is replaced this long after its last renewal.",
    )
    drift_sample_rate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of scored records the prediction log keeps in full, drawn at random, for drift "
        "(stored customers scored by id are kept in full whatever it is, for `clm retrain --from-store`); 0: "
        "none sampled.",
    )
    drift_psi_watch: float = Field(
        default=0.1, gt=0, description="PSI at or above which a field (or the score) drifts: watch it."
    )
    drift_psi_act: float = Field(
        default=0.25, gt=0, description="PSI at or above which a field (or the score) drifts so much: act."
    )
    drift_window_hours: float = Field(
        default=168.0,
        gt=0,
        description="The drift gauges' window: the sampled records of the last this many hours (7 days); the "
        "drift route's default `since`.",
    )
    drift_interval: float = Field(
        default=300.0,
        gt=0,
        description="Seconds between the drift job's computations (in one process of all sharing the "
        "database: the holder of its lease).",
    )
    drift_job: bool = Field(
        default=True,
        description="Compute the drift gauges in the background; false: only the route computes.",
    )
    score_trend_scorings: int = Field(
        default=5,
        ge=3,
        le=100,
        description="The profile's score trend reads a customer's last this many distinct scorings (up to 10 "
        "log rows each, read with the customer: the default's 50 cost ~0.4 ms a profile on SQLite, 100's 1,000 "
        "~8 ms).",
    )
    score_trend_min_slope: float = Field(
        default=0.01,
        gt=0,
        description="The least-squares slope of the score per scoring above which the trend is rising (below "
        "its negative: falling; between: steady).",
    )
    prediction_log_shutdown_timeout: float = Field(
        default=10.0, ge=0, description="Seconds the shutdown waits for the prediction log to be written."
    )

    @model_validator(mode="after")
    def _keys_given(self) -> Self:
        if self.api_key_digests_file is not None:
            try:
                from_file = json.loads(self.api_key_digests_file.read_text())
            except (OSError, ValueError) as exc:
                raise ValueError(f"CLM_API_KEY_DIGESTS_FILE cannot be read as JSON: {exc}") from exc
            if not isinstance(from_file, dict):
                raise ValueError("CLM_API_KEY_DIGESTS_FILE must hold a JSON object: digest -> scopes")
            self.api_key_digests = {**self.api_key_digests, **from_file}
        for digest, scopes in self.api_key_digests.items():
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                raise ValueError(f"{digest[:12]!r}... is not a SHA-256 hex digest (64 hex digits)")
            if any(scope not in ("score", "outcomes", "admin") for scope in scopes):
                raise ValueError(f"unknown scope in {scopes}: the scopes are score, outcomes, admin")
        if self.api_key_digests and "api_keys" not in self.model_fields_set:
            self.api_keys = {}  # digests given: the demo key is not accepted alongside them
        if not self.api_keys and not self.api_key_digests:
            raise ValueError("at least one API key is needed (CLM_API_KEYS or CLM_API_KEY_DIGESTS)")
        if self.profile_refresh_lease_seconds < 2 * self.profile_refresh_interval:
            raise ValueError(
                "CLM_PROFILE_REFRESH_LEASE_SECONDS must be at least twice CLM_PROFILE_REFRESH_INTERVAL: the "
                "holder renews its lease at every check, and one late check must not lose it"
            )
        if self.drift_psi_act < self.drift_psi_watch:
            raise ValueError("CLM_DRIFT_PSI_ACT must be at least CLM_DRIFT_PSI_WATCH")
        return self

    def key_scopes(self) -> dict[str, frozenset[Scope]]:
        """Every accepted key by its SHA-256 hex digest, with its scopes (keys given in clear are hashed here)."""
        scopes: dict[str, frozenset[Scope]] = {key_digest(k): frozenset(v) for k, v in self.api_keys.items()}
        for digest, given in self.api_key_digests.items():
            scopes[digest.lower()] = frozenset(given)
        return scopes

    def unsafe_binding(self) -> str | None:
        """Why serving on `host` is refused, or None: the demo key is accepted on loopback only."""
        if key_digest(DEMO_KEY) not in self.key_scopes() or is_loopback(self.host):
            return None
        return (
            f"refusing to serve on {self.host}: the demo key {DEMO_KEY!r} is accepted, and it is public. Give "
            "the keys: CLM_API_KEYS (JSON map of key to scopes, e.g. "
            '\'{"<key>": ["score", "outcomes"]}\') or, without keys in clear, CLM_API_KEY_DIGESTS (JSON map of '
            "each key's SHA-256 hex digest to scopes) or CLM_API_KEY_DIGESTS_FILE (a file holding that map); or "
            "bind to loopback (CLM_HOST=127.0.0.1)."
        )


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


@lru_cache
def get_settings() -> Settings:
    return Settings()
