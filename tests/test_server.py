"""`python -m app` with several workers: each worker listens on its own SO_REUSEPORT socket (app/server.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from model_registry.registry import ModelRegistry
from tests.conftest import API_KEYS, SCORE_KEY
from tests.test_churn_api import CUSTOMER


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service(registry: ModelRegistry, port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "CLM_MODELS": '["clm-churn"]',
        "CLM_API_KEYS": json.dumps(API_KEYS),
        "CLM_DATABASE_URL": f"sqlite:///{tmp_path / 'clm.db'}",
        "CLM_PORT": str(port),
        "CLM_WORKERS": "2",
        "CLM_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "app"], env=env, stderr=subprocess.PIPE)


def score(port: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/churn/score",
        data=json.dumps({"customers": [CUSTOMER]}).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": SCORE_KEY},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_two_workers_serve_and_stop_cleanly_on_sigterm(
    registry: ModelRegistry, churn_version: int, tmp_path: Path
) -> None:
    port = free_port()
    process = service(registry, port, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if score(port) == 200:
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the service did not come up: {process.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        assert all(score(port) == 200 for _ in range(20))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()


def test_a_worker_that_cannot_start_stops_the_service_with_an_error(
    registry: ModelRegistry, churn_version: int, tmp_path: Path
) -> None:
    with socket.socket() as taken:  # the port is held by another program (no SO_REUSEPORT)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = service(registry, taken.getsockname()[1], tmp_path)
        try:
            assert process.wait(timeout=60) == 1  # not a restart loop
        finally:
            process.kill()
    assert b"failed to start" in process.stderr.read()
