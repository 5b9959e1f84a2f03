"""Hot reload, refused versions, shadow scoring and a registry outage: the real app on real registries."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from model_registry.registry import CHALLENGER, CHAMPION, ModelRegistry
from tests.conftest import (
    ADMIN_KEY,
    SCORE_ONLY_KEY,
    ChurnLineup,
    copy_registry,
    make_settings,
    publish_copy,
)
from tests.test_churn_api import CUSTOMER
from training import promotion
from training.spec import find_spec

CHURN = "clm-churn"
BODY = {"customers": [CUSTOMER, {**CUSTOMER, "customer_id": "c-2", "tenure": 40, "contract": "Two year"}]}
FAST_POLL = 0.1  # seconds between registry polls in these tests
SHADOW_METRICS = (
    "clm_shadow_records_total",
    "clm_shadow_score_difference_count",
    "clm_shadow_score_difference_sum",
    "clm_shadow_label_changes_total",
)
PATIENCE = 60.0  # seconds a condition may take before a test gives up (a slow, shared machine)


@contextmanager
def serving(
    registry: ModelRegistry, models: tuple[str, ...] = (CHURN,), **settings: object
) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(registry, list(models), **settings))) as client:
        client.headers["X-API-Key"] = ADMIN_KEY
        yield client


def served_version(client: TestClient) -> int:
    response = client.post("/v1/churn/score", json=BODY)
    assert response.status_code == 200, response.text
    return int(response.json()["model"]["version"])


def metric(client: TestClient, name: str, **labels: str) -> float:
    """A sample from the app's /metrics, 0 when absent."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


class SteadyLoad:
    """Threads scoring churn without pause, each keeping the version of every answer and every failure."""

    def __init__(self, client: TestClient, threads: int = 3) -> None:
        self.client = client
        self.versions: list[list[int]] = [[] for _ in range(threads)]
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                response = self.client.post("/v1/churn/score", json=BODY)
            except Exception as exc:
                self.failures.append(repr(exc))
                continue
            if response.status_code != 200:
                self.failures.append(f"{response.status_code}: {response.text}")
                continue
            self.versions[index].append(response.json()["model"]["version"])

    def every_thread_sees(self, version: int) -> bool:
        return all(seen and seen[-1] == version for seen in self.versions)

    def phases(self) -> list[list[int]]:
        """Each thread's versions with repeats collapsed: the order in which it saw them."""
        return [[v for i, v in enumerate(seen) if i == 0 or seen[i - 1] != v] for seen in self.versions]


def test_promoting_and_rolling_back_under_load_change_the_served_version_with_no_failed_request(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, data_dir: Path
) -> None:
    weak, good = churn_lineup.weak, churn_lineup.good
    lineup_registry.set_alias(CHURN, CHAMPION, weak)
    lineup_registry.set_alias(CHURN, CHALLENGER, good)
    margins = promotion.GateSettings().margins()
    with serving(lineup_registry, reload_interval_seconds=FAST_POLL) as client, SteadyLoad(client) as load:
        wait_for(lambda: load.every_thread_sees(weak), "the first answers")

        result = promotion.promote(lineup_registry, find_spec("churn"), data_dir, margins)
        assert result.decision == "promoted"
        wait_for(lambda: load.every_thread_sees(good), "the promoted version to serve")

        assert promotion.rollback(lineup_registry, CHURN) == (good, weak)
        wait_for(lambda: load.every_thread_sees(weak), "the rolled-back version to serve")

    assert load.failures == []
    assert load.phases() == [[weak, good, weak]] * 3


@pytest.mark.parametrize("broken", ["bad_check", "corrupt"])
def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, broken: str
) -> None:
    bad = getattr(churn_lineup, broken)
    with serving(lineup_registry, reload_interval_seconds=0) as client:
        failures = metric(client, "clm_model_load_failures_total", model=CHURN, version=str(bad))
        lineup_registry.set_alias(CHURN, CHAMPION, bad)

        response = client.post(f"/v1/admin/models/{CHURN}/reload")

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "model_version_refused"
        assert served_version(client) == churn_lineup.good
        assert client.get("/readyz").status_code == 200
        assert metric(client, "clm_model_load_failures_total", model=CHURN, version=str(bad)) == failures + 1
        (listed,) = client.get("/v1/models").json()["models"]
        assert listed["version"] == churn_lineup.good
        assert [r["version"] for r in listed["refused"]] == [bad]


def test_a_refused_version_is_not_retried_at_every_poll(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup
) -> None:
    bad = churn_lineup.corrupt
    with serving(lineup_registry, reload_interval_seconds=FAST_POLL) as client:
        failures = metric(client, "clm_model_load_failures_total", model=CHURN, version=str(bad))
        lineup_registry.set_alias(CHURN, CHAMPION, bad)
        wait_for(
            lambda: metric(client, "clm_model_load_failures_total", model=CHURN, version=str(bad)) > failures,
            "the broken version to be refused",
        )
        polls = metric(client, "clm_registry_polls_total", model=CHURN, outcome="ok")
        wait_for(
            lambda: metric(client, "clm_registry_polls_total", model=CHURN, outcome="ok") >= polls + 5,
            "five more polls",
        )

        assert metric(client, "clm_model_load_failures_total", model=CHURN, version=str(bad)) == failures + 1
        assert served_version(client) == churn_lineup.good


def test_an_admin_reload_serves_the_new_champion_at_once(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup
) -> None:
    with serving(lineup_registry, reload_interval_seconds=0) as client:
        lineup_registry.set_alias(CHURN, CHAMPION, churn_lineup.weak)

        first = client.post(f"/v1/admin/models/{CHURN}/reload")
        again = client.post(f"/v1/admin/models/{CHURN}/reload")

        assert first.status_code == 200
        assert first.json() | {"loaded_at": None} == {
            "name": CHURN,
            "alias": CHAMPION,
            "version": churn_lineup.weak,
            "previous_version": churn_lineup.good,
            "changed": True,
            "loaded_at": None,
        }
        assert again.json()["changed"] is False
        assert served_version(client) == churn_lineup.weak


def test_reloading_needs_the_admin_scope_and_a_served_model(lineup_registry: ModelRegistry) -> None:
    with serving(lineup_registry, reload_interval_seconds=0) as client:
        score_only = client.post(f"/v1/admin/models/{CHURN}/reload", headers={"X-API-Key": SCORE_ONLY_KEY})
        unknown = client.post("/v1/admin/models/clm-unknown/reload")

    assert score_only.status_code == 403
    assert score_only.json()["error"]["code"] == "forbidden"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


def risk_levels(client: TestClient) -> list[str]:
    response = client.post("/v1/churn/score", json=BODY)
    assert response.status_code == 200, response.text
    return [r["risk_level"] for r in response.json()["results"]]


def test_shadow_scoring_compares_the_challenger_after_the_response_and_never_returns_it(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, tmp_path: Path
) -> None:
    # The risk levels the challenger gives BODY's customers, from an app serving it as champion.
    (tmp_path / "weak").mkdir()
    weak_registry = copy_registry(churn_lineup.registry, tmp_path / "weak")
    weak_registry.set_alias(CHURN, CHAMPION, churn_lineup.weak)
    with serving(weak_registry, reload_interval_seconds=0) as weak_client:
        challenger_levels = risk_levels(weak_client)
    lineup_registry.set_alias(CHURN, CHALLENGER, churn_lineup.weak)
    labels = {
        "model": CHURN,
        "champion_version": str(churn_lineup.good),
        "challenger_version": str(churn_lineup.weak),
    }
    with serving(lineup_registry, reload_interval_seconds=0, shadow_enabled=True, shadow_share=1.0) as client:
        records = metric(client, "clm_shadow_records_total", **labels)
        differences = metric(client, "clm_shadow_score_difference_count", **labels)
        changes = metric(client, "clm_shadow_label_changes_total", **labels)

        versions = {served_version(client) for _ in range(4)}
        champion_levels = risk_levels(client)

        assert versions == {churn_lineup.good}
        expected = records + 5 * len(BODY["customers"])
        wait_for(lambda: metric(client, "clm_shadow_records_total", **labels) == expected, "shadow scoring")
        assert metric(client, "clm_shadow_score_difference_count", **labels) == differences + 10
        assert (
            metric(client, "clm_shadow_score_difference_sum", **labels) > 0
        )  # the weak model scores otherwise
        changed = sum(a != b for a, b in zip(champion_levels, challenger_levels, strict=True))
        assert changed > 0  # the weak model puts some customer in another risk level
        assert metric(client, "clm_shadow_label_changes_total", **labels) == changes + 5 * changed


def test_no_request_is_shadowed_when_shadowing_is_off(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup
) -> None:
    lineup_registry.set_alias(CHURN, CHALLENGER, churn_lineup.weak)
    labels = {"model": CHURN, "challenger_version": str(churn_lineup.weak)}
    with serving(lineup_registry, reload_interval_seconds=0) as client:
        before = metric(client, "clm_shadow_records_total", **labels)
        served_version(client)
        assert metric(client, "clm_shadow_records_total", **labels) == before


@pytest.mark.parametrize(
    ("use_case", "line", "trained", "route", "field"),
    [
        ("leads", "inbound", "inbound_version", "/v1/leads/score", "leads"),
        ("products", None, "products_version", "/v1/products/match", "customers"),
        ("diagnosis", None, "diagnosis_trained", "/v1/diagnosis", "listings"),
    ],
)
def test_every_use_case_is_shadowed_by_its_challenger(
    registry: ModelRegistry,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    use_case: str,
    line: str | None,
    trained: str,
    route: str,
    field: str,
) -> None:
    request.getfixturevalue(trained)
    spec = find_spec(use_case, line)
    name = spec.registered_model
    own = copy_registry(registry, tmp_path)
    champion = own.resolve(name, CHAMPION)
    assert champion is not None
    bundle = own.load(name, champion.version)
    # The same boosters under a new version number: the two must agree on every record.
    own.set_alias(name, CHALLENGER, publish_copy(own, bundle, spec))
    challenger = own.resolve(name, CHALLENGER)
    assert challenger is not None
    records = bundle.metadata["check"]["records"]
    body = {field: records, **({"line": line} if line else {})}
    labels = {
        "model": name,
        "champion_version": str(champion.version),
        "challenger_version": str(challenger.version),
    }
    with serving(own, (name,), reload_interval_seconds=0, shadow_enabled=True, shadow_share=1.0) as client:
        before = {m: metric(client, m, **labels) for m in SHADOW_METRICS}

        response = client.post(route, json=body)

        assert response.status_code == 200, response.text
        assert response.json()["model"]["version"] == champion.version
        compared = before["clm_shadow_records_total"] + len(records)
        wait_for(lambda: metric(client, "clm_shadow_records_total", **labels) == compared, "shadow scoring")
        after = {m: metric(client, m, **labels) - before[m] for m in SHADOW_METRICS}
        assert after["clm_shadow_score_difference_count"] > 0
        assert after["clm_shadow_score_difference_sum"] == 0
        assert after["clm_shadow_label_changes_total"] == 0


@pytest.mark.parametrize("shadow_enabled", [True, False])
def test_the_model_list_shows_champion_and_challenger_with_their_holdout_figures(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, shadow_enabled: bool
) -> None:
    lineup_registry.set_alias(CHURN, CHALLENGER, churn_lineup.weak)
    with serving(lineup_registry, reload_interval_seconds=0, shadow_enabled=shadow_enabled) as client:
        (listed,) = client.get("/v1/models").json()["models"]

    weak_holdout = lineup_registry.load(CHURN, churn_lineup.weak).metadata["holdout"]
    assert (listed["version"], listed["alias"]) == (churn_lineup.good, CHAMPION)
    assert listed["loaded_at"] is not None
    challenger = listed["challenger"]
    assert (challenger["version"], challenger["alias"]) == (churn_lineup.weak, CHALLENGER)
    assert (challenger["loaded_at"] is not None) == shadow_enabled  # loaded only to shadow
    assert challenger["holdout_metrics"]["roc_auc"] == pytest.approx(weak_holdout["roc_auc"], abs=1e-6)
    assert listed["refused"] == []


# --- a registry outage: an MLflow tracking server in its own process, stopped while the app serves ---


class TrackingServer:
    """`mlflow server` on a free local port, in its own process group so that stopping it stops it all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{self.root / 'server.db'}",
        ]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.uri}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.25)
        self.stop()
        pytest.fail(f"mlflow server did not start; see {self.root / 'server.log'}")

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[TrackingServer]:
    server = TrackingServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_registry_outage_never_stops_scoring(
    tracking_server: TrackingServer,
    registry: ModelRegistry,
    churn_version: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fail fast instead of MLflow's default minutes of retries, so the test sees the poll fail.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    remote = ModelRegistry(tracking_server.uri, str(tmp_path / "artifacts"))
    version = publish_copy(remote, registry.load(CHURN, churn_version))
    with serving(remote, reload_interval_seconds=FAST_POLL) as client:
        assert served_version(client) == version
        failed = metric(client, "clm_registry_polls_total", model=CHURN, outcome="unavailable")

        tracking_server.stop()
        wait_for(
            lambda: metric(client, "clm_registry_polls_total", model=CHURN, outcome="unavailable") > failed,
            "a poll to find the registry unavailable",
        )

        assert [served_version(client) for _ in range(20)] == [version] * 20
        assert client.get("/readyz").status_code == 200
        reload = client.post(f"/v1/admin/models/{CHURN}/reload")
        assert reload.status_code == 503
        assert reload.json()["error"]["code"] == "registry_unavailable"

        tracking_server.start()
        polls = metric(client, "clm_registry_polls_total", model=CHURN, outcome="ok")
        wait_for(
            lambda: metric(client, "clm_registry_polls_total", model=CHURN, outcome="ok") > polls,
            "polling to resume",
        )
        assert client.post(f"/v1/admin/models/{CHURN}/reload").json()["version"] == version


def test_a_corrupt_champion_at_start_leaves_the_service_up_and_not_ready_saying_why(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup
) -> None:
    lineup_registry.set_alias(CHURN, CHAMPION, churn_lineup.corrupt)
    with serving(lineup_registry, reload_interval_seconds=0) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        scored = client.post("/v1/churn/score", json=BODY)
    assert ready.status_code == 503
    error = ready.json()["error"]
    assert error["code"] == "not_ready"
    (detail,) = error["details"]
    assert detail["path"] == CHURN
    assert f"version {churn_lineup.corrupt} (champion) refused" in detail["message"]
    assert "does not load" in detail["message"]
    assert scored.status_code == 503
    assert scored.json()["error"]["code"] == "model_not_loaded"
