"""create_app(): the service. The lifespan opens the registry and loads the models; nothing happens at import."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from app.auth import KeyRing
from app.db import Database
from app.drift import DriftJob
from app.error_handlers import install_error_handlers
from app.errors import DatabaseUnavailable
from app.guard import RequestGuard
from app.observability import ObservabilityMiddleware, configure_logging
from app.openapi import TypedOpenApi
from app.prediction_log import PredictionLog
from app.profile_refresh import ProfileRefresher
from app.routers import admin, customers, health, inference, model_versions, outcomes, scoring
from app.scoring.customers.profile import ScoreMemo
from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.shadow import ShadowScoring
from app.scoring.runtime.watcher import RegistryWatcher
from app.settings import DEMO_KEY, Settings, get_settings
from model_registry.registry import ModelRegistry

log = logging.getLogger(__name__)
DOCS_ASSETS = "/docs/assets"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    keys = KeyRing.of(settings)
    openapi: TypedOpenApi

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        configure_logging(settings.log_level)
        if DEMO_KEY in settings.api_keys:
            log.warning(
                "accepting the local demo key %r with scopes %s (loopback only); give CLM_API_KEYS or "
                "CLM_API_KEY_DIGESTS in production",
                DEMO_KEY,
                settings.api_keys[DEMO_KEY],
            )
        registry = ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))
        loaded = LoadedModels(
            registry,
            settings.models,
            settings.alias,
            threads=settings.booster_threads,
            exact_contributions=settings.exact_contributions,
            load_challengers=settings.shadow_enabled,
        )
        await run_in_threadpool(loaded.load_all)
        openapi.models = loaded
        shadow = ShadowScoring(
            loaded,
            enabled=settings.shadow_enabled,
            share=settings.shadow_share,
            max_pending=settings.shadow_max_pending,
        )
        watcher = RegistryWatcher(loaded, settings.reload_interval_seconds)
        # No migration here (`clm db upgrade` is a step of its own) and no connection: the service starts, and
        # scores by fields, with its database down; by-id, profile and outcome calls are 503 until it is back.
        database = Database(
            settings.database_url,
            statement_timeout=settings.database_statement_timeout,
            pool_timeout=settings.database_pool_timeout,
            connect_timeout=settings.database_connect_timeout,
        )
        database_check = asyncio.get_running_loop().create_task(_log_database_state(database))
        prediction_log = PredictionLog(
            database.engine,
            capacity=settings.prediction_log_capacity,
            batch_size=settings.prediction_log_batch,
            interval=settings.prediction_log_interval,
            sample_rate=settings.drift_sample_rate,
        )
        prediction_log.start()
        watcher.start()
        refresher = None
        if settings.profile_refresh:
            refresher = ProfileRefresher(
                database,
                loaded,
                interval=settings.profile_refresh_interval,
                batch_size=settings.profile_refresh_batch,
                lease_seconds=settings.profile_refresh_lease_seconds,
                nice=settings.profile_refresh_nice,
                follow_registry=settings.reload_interval_seconds > 0,
            )
            refresher.start()
        drift_job = None
        if settings.drift_job:
            drift_job = DriftJob(
                database,
                loaded,
                interval=settings.drift_interval,
                window=timedelta(hours=settings.drift_window_hours),
                watch=settings.drift_psi_watch,
                act=settings.drift_psi_act,
            )
            drift_job.start()
        # Everything loaded so far (MLflow, SQLAlchemy, the boosters' Python side: ~340,000 objects) lives as
        # long as the process. Frozen, it is left out of the cyclic collector's full passes, which otherwise
        # walked it all (260 ms) every few large requests: the p99 of 1,000-row batches was that pause.
        gc.collect()
        gc.freeze()
        try:
            yield {
                "settings": settings,
                "keys": keys,
                "models": loaded,
                "database": database,
                "prediction_log": prediction_log,
                "profile_memo": ScoreMemo(settings.profile_memo_size),
                "shadow": shadow,
                "profile_refresher": refresher,
                "drift_job": drift_job,
            }
        finally:
            database_check.cancel()
            if refresher is not None:
                await run_in_threadpool(refresher.stop)
            if drift_job is not None:
                await run_in_threadpool(drift_job.stop)
            watcher.stop()
            await run_in_threadpool(prediction_log.close, settings.prediction_log_shutdown_timeout)
            await database.aclose()

    # Swagger UI (/docs) and ReDoc (/redoc) load their scripts and styles from the service itself (the package
    # ships them, served under /docs/assets): the pages work on a network without the public CDNs.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        title="Lifecycle Scoring Service",
        version="1.0.0",
        summary="Lead scoring, cross-sell matching, churn warning and effect diagnosis from MLflow-registered "
        "XGBoost models.",
        lifespan=lifespan,
    )
    openapi = TypedOpenApi(app.openapi)
    app.openapi = openapi  # type: ignore[method-assign]
    # Added first, so it runs inside ObservabilityMiddleware: refusals are logged and counted with a request id.
    app.add_middleware(RequestGuard, router=app.router, keys=keys, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware)
    install_error_handlers(app)
    for router in (
        health.router,
        scoring.router,
        model_versions.router,
        admin.router,
        customers.router,
        outcomes.router,
        inference.health,
        inference.router,
    ):
        app.include_router(router)
    return app


async def _log_database_state(database: Database) -> None:
    """Say at start whether the database answers and is migrated, without waiting for it."""
    try:
        state, message = await database.run(database.state)
    except DatabaseUnavailable as exc:
        state, message = "unavailable", exc.message
    if state == "ok":
        log.info("database %s: %s", database.dialect, message)
    else:
        log.warning("database %s %s: %s", database.dialect, state, message)
