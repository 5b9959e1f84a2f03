"""Stored profile scores kept current in the background by one process (app/profile_refresh.py): after a
promotion, a rollback or an ingest, with no command run. Real registry, real models, real app, SQLite and
PostgreSQL; a real `python -m app` with two worker processes for the lease and the metrics across processes.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import func, select, update

import app.profile_refresh as refresh_module
from app.db import Database
from app.ingest import ingest_customers
from app.models import Lease, StoredProfileScores
from app.profile_refresh import LEASE, ProfileRefresher
from app.repositories import customers as customer_repo
from app.repositories import leases
from app.scoring.runtime.loaded import LoadedModels
from app.settings import Settings
from model_registry.registry import CHAMPION, ModelRegistry, RegistryUnavailable
from tests.conftest import API_KEYS, SCORE_KEY, TELCO_FILE, ChurnLineup, make_settings
from tests.test_prediction_log import PostgresOutage, SqliteOutage, wait_until
from tests.test_server import free_port
from training import promotion
from training.spec import find_spec

CHURN = "clm-churn"
CUSTOMERS = 200  # the first Telco customers: enough for several batches, quick to score with the test models
FAST = {
    "profile_refresh": True,
    "profile_refresh_interval": 0.2,
    "profile_refresh_batch": 64,
    "profile_refresh_lease_seconds": 2.0,
    # No polling: what makes the refresher score with a new champion is the refresher itself.
    "reload_interval_seconds": 3600,
}
PATIENCE = 60.0  # seconds a condition may take before a test gives up (a slow, shared machine)


def load_customers(database_url: str, data_dir: Path, folder: Path, count: int = CUSTOMERS) -> None:
    """The first `count` Telco customers into the store, as `clm ingest customers` loads them."""
    with (data_dir / TELCO_FILE).open(newline="") as handle:
        rows = list(csv.reader(handle))[: count + 1]
    path = folder / "customers.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    database = Database(database_url)
    try:
        ingest_customers(database, path, batch_size=500)
    finally:
        database.dispose()


def stored_rows(database_url: str) -> dict[str, tuple[int, bool]]:
    """Every stored customer's scores: (churn version, made from its current record)."""
    from app.models import Customer

    database = Database(database_url)
    try:
        with database.engine.connect() as connection:
            statement = select(
                Customer.customer_id,
                StoredProfileScores.churn_version,
                StoredProfileScores.features_updated_at == Customer.updated_at,
            ).outerjoin(StoredProfileScores, StoredProfileScores.customer_id == Customer.customer_id)
            return {
                customer: (version, bool(same)) for customer, version, same in connection.execute(statement)
            }
    finally:
        database.dispose()


def all_current(database_url: str, churn_version: int) -> bool:
    rows = stored_rows(database_url)
    return len(rows) > 0 and all(row == (churn_version, True) for row in rows.values())


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@contextmanager
def serving(registry: ModelRegistry, database_url: str, **settings: Any) -> Iterator[TestClient]:
    overrides = {**FAST, **settings}
    app = make_settings(registry, [CHURN], database_url=database_url, **overrides)
    from app.main import create_app

    with TestClient(create_app(app)) as client:
        client.headers["X-API-Key"] = SCORE_KEY
        yield client


def refresher_of(client: TestClient) -> ProfileRefresher:
    refresher = client.app_state["profile_refresher"]
    assert isinstance(refresher, ProfileRefresher)
    return refresher


def test_after_a_promotion_and_a_rollback_stored_profiles_are_current_again_with_no_command_run(
    lineup_registry: ModelRegistry,
    churn_lineup: ChurnLineup,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    good, weak = churn_lineup.good, churn_lineup.weak
    load_customers(database_url, data_dir, tmp_path)
    with serving(lineup_registry, database_url) as client:
        # Customers loaded and never scored: the refresher scores them all.
        wait_until(lambda: all_current(database_url, good), "the stored customers to be scored", PATIENCE)
        wait_until(lambda: sample("clm_profile_refresh_backlog") == 0, "the backlog metric to fall to 0")
        refreshed = sample("clm_profile_refreshed_total")

        # `clm promote` (forced: the weak version would fail the gate) moves the alias; nothing else is run.
        margins = promotion.GateSettings().margins()
        result = promotion.promote(
            lineup_registry, find_spec("churn"), data_dir, margins, version=weak, force=True
        )
        assert result.promoted
        wait_until(lambda: all_current(database_url, weak), "the stored scores of the new champion", PATIENCE)
        wait_until(lambda: sample("clm_profile_refresh_backlog") == 0, "the backlog metric to fall to 0")
        assert sample("clm_profile_refreshed_total") >= refreshed + CUSTOMERS

        # The profile now reads the stored scores of the version served (the refresher's worker swapped it in).
        stored_before = sample("clm_profile_scores_total", source="stored")
        body = client.get("/v1/customers/7590-VHVEG/profile").json()
        assert body["churn"]["models"] == [{"name": CHURN, "version": weak, "alias": CHAMPION}]
        assert sample("clm_profile_scores_total", source="stored") == stored_before + 1

        # `clm rollback`: the previous champion is back, and so are its stored scores.
        assert promotion.rollback(lineup_registry, CHURN) == (weak, good)
        wait_until(lambda: all_current(database_url, good), "the stored scores after the rollback", PATIENCE)
        wait_until(lambda: sample("clm_profile_refresh_backlog") == 0, "the backlog metric to fall to 0")
        assert client.get("/metrics").text.count("clm_profile_refresh_backlog 0.0") == 1


def test_a_changed_or_new_customer_is_scored_in_the_background(
    lineup_registry: ModelRegistry,
    churn_lineup: ChurnLineup,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    load_customers(database_url, data_dir, tmp_path)
    with serving(lineup_registry, database_url) as client:
        wait_until(lambda: all_current(database_url, churn_lineup.good), "the first scores", PATIENCE)
        before = client.get("/v1/customers/7590-VHVEG/profile").json()["churn"]["churn_probability"]
        with client.app_state["database"].session() as session:
            record = customer_repo.get_records(session.connection(), ["7590-VHVEG"])["7590-VHVEG"]
            customer_repo.upsert_many(
                session,
                [
                    {**record, "contract": "Two year", "tenure": 30},
                    {**record, "customer_id": "NEW-0001"},
                ],
            )
        wait_until(
            lambda: all_current(database_url, churn_lineup.good), "the changed and new customers", PATIENCE
        )
        assert len(stored_rows(database_url)) == CUSTOMERS + 1
        stored_before = sample("clm_profile_scores_total", source="stored")
        after = client.get("/v1/customers/7590-VHVEG/profile").json()["churn"]["churn_probability"]
        assert sample("clm_profile_scores_total", source="stored") == stored_before + 1
        assert after < before  # scored from the changed record: a two-year contract, 30 months in


def test_one_of_two_apps_sharing_a_database_refreshes_and_the_other_takes_over_when_it_stops(
    lineup_registry: ModelRegistry,
    churn_lineup: ChurnLineup,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    load_customers(database_url, data_dir, tmp_path)
    apps = [ExitStack(), ExitStack()]
    try:
        clients = [app.enter_context(serving(lineup_registry, database_url)) for app in apps]
        wait_until(lambda: all_current(database_url, churn_lineup.good), "the first scores", PATIENCE)
        refreshers = [refresher_of(client) for client in clients]
        time.sleep(5 * FAST["profile_refresh_interval"])  # several checks each
        assert [r.lease.holding for r in refreshers].count(True) == 1
        index = 0 if refreshers[0].lease.holding else 1
        holder, other = refreshers[index], refreshers[1 - index]
        assert holder.scored == CUSTOMERS
        assert other.scored == 0  # it tried for the lease at every check, and did nothing else
        assert sample("clm_profile_refresh_lease") == 1
        database = clients[1 - index].app_state["database"]
        with database.engine.connect() as connection:
            assert leases.holder_of(connection, LEASE) == holder.lease.holder

        apps[index].close()  # the holder's app stops and gives its lease up: taken over at the next check
        wait_until(lambda: other.lease.holding, "the other app to take the lease over", 10 * other.interval)
        with database.engine.begin() as connection:  # a promoted version's scores would be as stale
            connection.execute(update(StoredProfileScores).values(churn_version=-1))
        wait_until(
            lambda: all_current(database_url, churn_lineup.good), "the stale scores refreshed", PATIENCE
        )
        assert other.scored == CUSTOMERS
        assert sample("clm_profile_refresh_lease") == 1
    finally:
        for app in apps:
            app.close()


def test_every_worker_follows_a_promotion_of_the_profile_models_at_its_next_check(
    lineup_registry: ModelRegistry,
    churn_lineup: ChurnLineup,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    """Not only the holder: a worker left on the old version would score its views on the spot once the new
    version's scores are stored, until its own poll (30 s by default; an hour here)."""
    load_customers(database_url, data_dir, tmp_path, count=20)
    with serving(lineup_registry, database_url) as first, serving(lineup_registry, database_url) as second:
        wait_until(lambda: all_current(database_url, churn_lineup.good), "the first scores", PATIENCE)
        lineup_registry.set_alias(CHURN, CHAMPION, churn_lineup.weak)
        for client in (first, second):
            models = client.app_state["models"]
            wait_until(lambda m=models: m.get(CHURN).version == churn_lineup.weak, "the worker to follow", 10)
        wait_until(lambda: all_current(database_url, churn_lineup.weak), "the new scores", PATIENCE)
        stored_before = sample("clm_profile_scores_total", source="stored")
        for client in (first, second):
            assert client.get("/v1/customers/7590-VHVEG/profile").status_code == 200
        assert sample("clm_profile_scores_total", source="stored") == stored_before + 2


def test_a_holder_that_died_is_replaced_once_its_lease_expires(
    lineup_registry: ModelRegistry,
    churn_lineup: ChurnLineup,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    load_customers(database_url, data_dir, tmp_path, count=20)
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:  # a holder on another host that stopped renewing
            assert leases.take(connection, LEASE, "gone-host:4242:dead", 3.0)
        started = time.monotonic()
        with serving(lineup_registry, database_url) as client:
            refresher = refresher_of(client)
            wait_until(lambda: refresher.lease.holding, "the lease to be taken over", PATIENCE)
            assert time.monotonic() - started >= 2.5  # not before the dead holder's lease expired
            wait_until(lambda: all_current(database_url, churn_lineup.good), "the scores", PATIENCE)
    finally:
        database.dispose()


def test_of_processes_racing_for_a_lease_exactly_one_gets_it(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(6)]  # an engine each, as separate processes have
    start = threading.Barrier(len(databases))
    won: list[str] = []

    def race(index: int) -> None:
        start.wait()
        with databases[index].engine.begin() as connection:
            if leases.take(connection, "race", f"holder-{index}", 30.0):
                won.append(f"holder-{index}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(databases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(won) == 1
        with databases[0].engine.begin() as connection:
            assert leases.holder_of(connection, "race") == won[0]
            assert leases.take(connection, "race", won[0], 30.0)  # taken again by its holder: renewed
            assert leases.renew(connection, "race", won[0], 30.0)
            assert not leases.take(connection, "race", "latecomer", 30.0)
            assert not leases.renew(connection, "race", "latecomer", 30.0)
            assert not leases.release(connection, "race", "latecomer")  # only its holder gives it up
            assert leases.release(connection, "race", won[0])
            assert leases.holder_of(connection, "race") is None
            assert leases.take(connection, "race", "latecomer", 30.0)
            # Past its expiry a lease is anyone's.
            connection.execute(
                update(Lease)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
                .where(Lease.name == "race")
            )
            assert leases.holder_of(connection, "race") is None
            assert leases.take(connection, "race", won[0], 30.0)
    finally:
        for database in databases:
            database.dispose()


@pytest.fixture
def models(lineup_registry: ModelRegistry) -> LoadedModels:
    loaded = LoadedModels(lineup_registry, [CHURN], CHAMPION, threads=1, exact_contributions=True)
    loaded.load_all()
    return loaded


def row_versions(database_url: str) -> list[int]:
    return sorted({version for version, _ in stored_rows(database_url).values() if version is not None})


def test_a_batch_scored_while_the_worker_swapped_versions_is_never_written(
    lineup_registry: ModelRegistry,
    churn_lineup: ChurnLineup,
    models: LoadedModels,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two versions in the middle of a reload: the batch the old version scored is dropped, not written."""
    load_customers(database_url, data_dir, tmp_path, count=50)
    database = Database(database_url)
    refresher = ProfileRefresher(database, models, interval=1.0, batch_size=20, lease_seconds=10.0)
    scored_by = []

    def score_then_swap(stale: Any, churn: Any, products: Any) -> Any:
        rows = scored_rows(stale, churn, products)
        scored_by.append(churn.version)
        if len(scored_by) == 1:  # the worker's watcher swaps the new champion in while this batch is scored
            lineup_registry.set_alias(CHURN, CHAMPION, churn_lineup.weak)
            models.poll()
        return rows

    scored_rows = refresh_module.scored_rows
    monkeypatch.setattr(refresh_module, "scored_rows", score_then_swap)
    try:
        assert refresher._check() is True  # start over at once, with the version now served
        assert row_versions(database_url) == []  # the old version's batch was dropped
        assert refresher._check() is False
        assert all_current(database_url, churn_lineup.weak)
        assert scored_by == [churn_lineup.good] + [churn_lineup.weak] * 3
    finally:
        refresher.stop()
        database.dispose()


def test_a_refresher_that_lost_its_lease_writes_nothing(
    churn_lineup: ChurnLineup,
    models: LoadedModels,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It stalled past its lease's expiry and another process took the lease: its batch is not written."""
    load_customers(database_url, data_dir, tmp_path, count=50)
    database = Database(database_url)
    refresher = ProfileRefresher(database, models, interval=1.0, batch_size=20, lease_seconds=10.0)

    def score_and_stall(stale: Any, churn: Any, products: Any) -> Any:
        rows = scored_rows(stale, churn, products)
        with database.engine.begin() as connection:  # expired meanwhile, and taken by another process
            connection.execute(update(Lease).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
            assert leases.take(connection, LEASE, "another-host:1:x", 10.0)
        return rows

    scored_rows = refresh_module.scored_rows
    monkeypatch.setattr(refresh_module, "scored_rows", score_and_stall)
    try:
        assert refresher._check() is False
        assert not refresher.lease.holding
        assert len(stored_rows(database_url)) == 50
        assert row_versions(database_url) == []
        assert refresher.scored == 0
    finally:
        refresher.stop()
        with database.engine.connect() as connection:
            assert leases.holder_of(connection, LEASE) == "another-host:1:x"  # stop() gave up nothing of its
        database.dispose()


def test_with_the_registry_unavailable_the_refresher_goes_on_with_what_is_served(
    churn_lineup: ChurnLineup,
    models: LoadedModels,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_customers(database_url, data_dir, tmp_path, count=20)
    database = Database(database_url)
    refresher = ProfileRefresher(database, models, interval=1.0, batch_size=20, lease_seconds=10.0)

    def unavailable(name: str) -> None:
        raise RegistryUnavailable("the tracking server does not answer")

    monkeypatch.setattr(models, "follow", unavailable)
    try:
        assert refresher._check() is False
        assert all_current(database_url, churn_lineup.good)
    finally:
        refresher.stop()
        database.dispose()


def test_a_database_outage_does_not_stop_the_refresher(
    lineup_registry: ModelRegistry,
    churn_lineup: ChurnLineup,
    backend: str,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    load_customers(database_url, data_dir, tmp_path, count=20)
    outage = PostgresOutage(database_url) if backend == "postgresql" else SqliteOutage(database_url)
    failures = sample("clm_profile_refresh_failures_total")
    with serving(lineup_registry, outage.app_url, database_connect_timeout=1) as client:
        wait_until(lambda: all_current(database_url, churn_lineup.good), "the first scores", PATIENCE)
        outage.begin()
        wait_until(
            lambda: sample("clm_profile_refresh_failures_total") > failures,
            "the refresher to meet the outage",
        )
        assert client.get("/healthz").status_code == 200
        outage.end()
        with client.app_state["database"].engine.begin() as connection:
            connection.execute(update(StoredProfileScores).values(churn_version=-1))
        wait_until(
            lambda: all_current(database_url, churn_lineup.good), "the refresh after the outage", PATIENCE
        )


def test_the_refresher_is_on_by_default_can_be_turned_off_and_its_lease_outlasts_a_late_check(
    lineup_registry: ModelRegistry, database_url: str
) -> None:
    assert Settings().profile_refresh is True
    with serving(lineup_registry, database_url, profile_refresh=False) as client:
        assert client.app_state["profile_refresher"] is None
    with pytest.raises(ValidationError, match="at least twice"):
        Settings(profile_refresh_interval=10, profile_refresh_lease_seconds=15)


def test_two_worker_processes_one_holder_and_a_stalled_holder_is_replaced_and_writes_nothing_after(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, data_dir: Path, tmp_path: Path
) -> None:
    """`python -m app` with two workers: one holds the lease, /metrics (multiprocess mode) says so and shows
    its backlog; a holder that stops (SIGSTOP: hung, as a dead one renews nothing either) is replaced once its
    lease expires, and when it wakes up it finds the lease gone and leaves the refreshing to the new holder."""
    database_url = f"sqlite:///{tmp_path / 'clm.db'}"
    database = Database(database_url)
    database.upgrade()
    load_customers(database_url, data_dir, tmp_path, count=50)
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": lineup_registry.tracking_uri,
        "CLM_MODELS": f'["{CHURN}"]',
        "CLM_API_KEYS": json.dumps(API_KEYS),
        "CLM_DATABASE_URL": database_url,
        "CLM_PORT": str(port),
        "CLM_WORKERS": "2",
        "CLM_LOG_LEVEL": "WARNING",
        "CLM_PROFILE_REFRESH_INTERVAL": "0.5",
        "CLM_PROFILE_REFRESH_LEASE_SECONDS": "3",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen([sys.executable, "-m", "app"], env=env, stderr=subprocess.DEVNULL)

    def metrics() -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return {}
        return {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("clm_profile_refresh")
        }

    def holder() -> str | None:
        with database.engine.connect() as connection:
            return leases.holder_of(connection, LEASE)

    stopped = None
    try:
        wait_until(lambda: all_current(database_url, churn_lineup.good), "the first scores", 120)
        wait_until(lambda: metrics().get("clm_profile_refresh_backlog") == 0, "the backlog at 0 in /metrics")
        assert metrics()["clm_profile_refresh_lease"] == 1  # summed over both workers: one holds it
        first = holder()
        assert first is not None
        stopped = int(first.split(":")[1])
        os.kill(stopped, signal.SIGSTOP)  # the holder hangs and stops renewing its lease
        wait_until(lambda: holder() not in (None, first), "the other worker to take the lease over", PATIENCE)
        with database.engine.begin() as connection:
            connection.execute(update(StoredProfileScores).values(churn_version=-1))
        wait_until(
            lambda: all_current(database_url, churn_lineup.good), "the refresh by the new holder", PATIENCE
        )
        second = holder()
        os.kill(stopped, signal.SIGCONT)
        stopped = None
        wait_until(lambda: metrics().get("clm_profile_refresh_lease") == 1, "one holder in /metrics again")
        assert holder() == second
        with database.engine.connect() as connection:
            leases_held = (
                select(func.count()).select_from(Lease).where(Lease.name == LEASE)
            )  # not the drift job's
            assert connection.execute(leases_held).scalar_one() == 1
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        finally:
            process.kill()
            database.dispose()
