"""Replicas that share everything but memory, as deploy/compose.yaml runs them, on one machine with real processes.

One `mlflow server` on a PostgreSQL database of its own with a shared artifact directory, one PostgreSQL schema for
the service's store and prediction log, two `python -m app` replicas on their own ports, and clients that each send
one scoring request after another to the replicas in turn (as a load balancer would). Under that load: a
promotion is served by both replicas within the poll interval (plus the new version's load); a replica stopped
fails no request sent to the other; and the prediction log holds exactly one row per answered score.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from app.schemas.churn import TELCO_EXAMPLE as CUSTOMER
from model_registry.registry import ModelRegistry
from tests.conftest import API_KEYS, POSTGRES_URL, SCORE_KEY, Databases, publish_copy
from tests.test_prediction_log import wait_until
from tests.test_server import free_port

POLL_SECONDS = 2.0
# The next poll (at most one interval away), then loading and checking the new version (0.2-0.5 s here, on a
# shared 2-core machine under load): what "within the poll interval" takes.
PROMOTION_DEADLINE = POLL_SECONDS + 2.0
BIN = Path(sys.executable).parent
CLIENTS = 4  # requests in flight at once, across the two replicas


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[ModelRegistry]:
    """`mlflow server` on a new PostgreSQL database (dropped afterwards), artifacts in a shared directory."""
    database = f"clm_mlflow_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    store = make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    port = free_port()
    log = tmp_path / "mlflow.log"
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", store, "--default-artifact-root"]
    command += [str(artifacts), "--no-serve-artifacts", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as output:
        # A session of its own: the server's worker processes are stopped with it, by its process group.
        server = subprocess.Popen(
            [*command, "--workers", "1"], stdout=output, stderr=output, start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{uri}/health") or server.poll() is not None, "mlflow server", 120)
        assert server.poll() is None, log.read_text()[-3000:]
        yield ModelRegistry(uri, str(artifacts))
    finally:
        _stop_group(server)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:  # refused, reset or timed out: not up yet
        return False


def _replica(registry: ModelRegistry, database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "CLM_MODELS": '["clm-churn"]',
        "CLM_API_KEYS": json.dumps(API_KEYS),
        "CLM_DATABASE_URL": database_url,
        "CLM_PORT": str(port),
        "CLM_WORKERS": "1",
        "CLM_RELOAD_INTERVAL_SECONDS": str(POLL_SECONDS),
        "CLM_PROFILE_REFRESH": "false",
        "CLM_LOG_LEVEL": "WARNING",
    }
    with open(log, "wb") as output:
        return subprocess.Popen([sys.executable, "-m", "app"], env=env, stderr=output)


@dataclass
class Answer:
    replica: int
    record_id: str
    status: int | None  # None: the connection was refused or broken
    version: int | None
    sent: float
    at: float  # answered (or refused)


@dataclass
class Load:
    """Clients (threads running `run`) each sending single-record scores to the replicas in turn, as a
    round-robin balancer would; a request a stopped replica refuses is sent to the other, as a balancer retries
    a refused connection."""

    ports: list[int]
    answers: list[Answer] = field(default_factory=list)
    stopped: set[int] = field(default_factory=set)
    _done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        turn = 0
        while not self._done.is_set():
            replica = turn % len(self.ports)
            turn += 1
            record_id = f"r-{uuid.uuid4().hex[:12]}"
            answer = self._send(replica, record_id)
            self.answers.append(answer)
            if answer.status is None and replica in self.stopped:
                other = (replica + 1) % len(self.ports)
                self.answers.append(self._send(other, record_id))

    def _send(self, replica: int, record_id: str) -> Answer:
        sent = time.monotonic()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[replica]}/v1/churn/score",
            data=json.dumps(
                {"customers": [{**CUSTOMER, "customer_id": record_id}], "explain": False}
            ).encode(),
            headers={"Content-Type": "application/json", "X-API-Key": SCORE_KEY},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.loads(response.read())
                return Answer(
                    replica, record_id, int(response.status), body["model"]["version"], sent, time.monotonic()
                )
        except urllib.error.HTTPError as exc:
            return Answer(replica, record_id, exc.code, None, sent, time.monotonic())
        except OSError:  # refused, reset or timed out
            return Answer(replica, record_id, None, None, sent, time.monotonic())

    def stop(self) -> None:
        self._done.set()


def test_two_replicas_on_one_tracking_server_and_one_database(
    tracking_server: ModelRegistry,
    registry: ModelRegistry,
    churn_version: int,
    databases: Databases,
    tmp_path: Path,
) -> None:
    bundle = registry.load("clm-churn", churn_version)
    first = publish_copy(tracking_server, bundle)
    tracking_server.set_alias("clm-churn", "champion", first)
    second = publish_copy(tracking_server, bundle)
    database_url = databases.new("postgresql")
    ports = [free_port(), free_port()]
    replicas = [
        _replica(tracking_server, database_url, port, tmp_path / f"replica-{i}.log")
        for i, port in enumerate(ports)
    ]
    load = Load(ports)
    clients = [threading.Thread(target=load.run) for _ in range(CLIENTS)]
    try:
        for port in ports:
            wait_until(partial(_answers, f"http://127.0.0.1:{port}/readyz"), f"replica :{port}", 120)
        for client in clients:
            client.start()
        wait_until(lambda: len(load.answers) >= 50, "50 answers before the promotion")

        tracking_server.set_alias("clm-churn", "champion", second)
        promoted = time.monotonic()
        wait_until(
            lambda: all(
                any(a.replica == r and a.version == second and a.at > promoted for a in load.answers)
                for r in (0, 1)
            ),
            "both replicas serving the promoted version",
            PROMOTION_DEADLINE * 3,
        )
        served_after = [
            min(a.at for a in load.answers if a.replica == r and a.version == second) - promoted
            for r in (0, 1)
        ]
        # Once a replica serves the new version, every request sent to it after is scored by the new one.
        for r in (0, 1):
            switched = promoted + served_after[r]
            assert all(a.version == second for a in load.answers if a.replica == r and a.sent > switched)

        load.stopped.add(0)  # from now on a refused request is retried on the other, as a balancer would
        replicas[0].send_signal(signal.SIGTERM)
        replicas[0].wait(timeout=60)
        stopped_at = time.monotonic()
        wait_until(lambda: sum(a.at > stopped_at for a in load.answers) >= 50, "50 answers after the stop")
    finally:
        load.stop()
        for client in clients:
            client.join(timeout=60)
        for replica in replicas:
            if replica.poll() is None:
                replica.send_signal(signal.SIGTERM)  # the prediction log is written before the process ends
                replica.wait(timeout=60)

    to_the_other = [a for a in load.answers if a.replica == 1]
    assert to_the_other
    assert all(a.status == 200 for a in to_the_other), [a for a in to_the_other if a.status != 200][:5]
    # The stopped replica answered what it took in, and refused connections after: none broken, none a 5xx.
    assert {a.status for a in load.answers if a.replica == 0} <= {200, None}
    answered = [a.record_id for a in load.answers if a.status == 200]
    assert len(set(answered)) == len(answered)
    refused_everywhere = {a.record_id for a in load.answers if a.status is None} - set(answered)
    assert not refused_everywhere
    assert max(served_after) <= PROMOTION_DEADLINE, served_after

    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT record_id, count(*) FROM prediction_log GROUP BY record_id")
        ).all()
    engine.dispose()
    logged: dict[str, int] = {record_id: count for record_id, count in rows}
    assert sorted(logged) == sorted(answered)
    assert set(logged.values()) == {1}
    sys.stderr.write(
        f"replicas: {len(answered)} scores answered, promotion served after {served_after[0]:.2f} s and "
        f"{served_after[1]:.2f} s (poll every {POLL_SECONDS:.0f} s), one log row each\n"
    )
