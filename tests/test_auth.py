"""Keys and scopes (API.md): safe by default, digests instead of keys in clear, a scope for outcomes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.auth import KeyRing
from app.guard import RequestGuard
from app.main import create_app
from app.schemas.churn import TELCO_EXAMPLE as CUSTOMER
from app.settings import DEMO_KEY, Settings
from model_registry.registry import ModelRegistry
from tests.conftest import OUTCOMES_ONLY_KEY, SCORE_ONLY_KEY

ROOT = Path(__file__).resolve().parents[1]


def serve(**environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLM_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "app"],
        env={**env, "PYTHONPATH": str(ROOT), "CLM_MODELS": "[]", **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3"])
def test_serving_beyond_loopback_with_the_demo_key_is_refused_saying_how_to_give_keys(host: str) -> None:
    result = serve(CLM_HOST=host)
    assert result.returncode != 0
    assert "CLM_API_KEYS" in result.stderr
    assert "CLM_API_KEY_DIGESTS" in result.stderr
    assert "demo key" in result.stderr


def test_the_demo_key_is_fine_on_loopback_and_a_real_key_anywhere() -> None:
    assert Settings(host="127.0.0.1").unsafe_binding() is None
    assert Settings(host="::1").unsafe_binding() is None
    assert Settings(host="0.0.0.0", api_keys={"k-1": ["score"]}).unsafe_binding() is None
    assert Settings(host="0.0.0.0", api_keys={DEMO_KEY: ["score"]}).unsafe_binding() is not None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_keys_given_as_digests_drop_the_demo_key(tmp_path: Path) -> None:
    from_env = Settings(host="0.0.0.0", api_key_digests={digest("k-env"): ["score"]})
    file = tmp_path / "digests.json"
    file.write_text(json.dumps({digest("k-file"): ["outcomes"]}))
    from_file = Settings(host="0.0.0.0", api_key_digests_file=file)
    for settings in (from_env, from_file):
        assert settings.api_keys == {}
        assert digest(DEMO_KEY) not in settings.key_scopes()
        assert settings.unsafe_binding() is None
    assert from_file.key_scopes() == {digest("k-file"): frozenset({"outcomes"})}


@pytest.mark.parametrize(
    "digests", [{"not-a-digest": ["score"]}, {digest("k"): ["everything"]}], ids=["digest", "scope"]
)
def test_a_malformed_digest_or_scope_is_refused_at_start(digests: dict[str, list[str]]) -> None:
    with pytest.raises(ValidationError):
        Settings(api_key_digests=digests)


@pytest.fixture(scope="module")
def digest_client(registry: ModelRegistry, churn_version: int) -> TestClient:
    settings = Settings(
        mlflow_tracking_uri=registry.tracking_uri,
        artifact_root=Path(registry.artifact_root or "."),
        models=["clm-churn"],
        api_key_digests={
            digest("k-score"): ["score"],
            digest("k-outcomes"): ["outcomes"],
        },
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_key_held_as_a_digest_scores(digest_client: TestClient) -> None:
    response = digest_client.post(
        "/v1/churn/score", json={"customers": [CUSTOMER]}, headers={"X-API-Key": "k-score"}
    )
    assert response.status_code == 200, response.text
    refused = digest_client.post(
        "/v1/churn/score", json={"customers": [CUSTOMER]}, headers={"X-API-Key": DEMO_KEY}
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_a_key_without_the_score_scope_is_a_403_on_a_scoring_route(client: TestClient) -> None:
    response = client.post(
        "/v1/churn/score", json={"customers": [CUSTOMER]}, headers={"X-API-Key": OUTCOMES_ONLY_KEY}
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "score" in error["message"]


def test_recording_outcomes_needs_the_outcomes_scope(client: TestClient) -> None:
    outcome = {"event": "customer_churned", "record_id": "7590-VHVEG"}
    response = client.post(
        "/v1/outcomes", json={"outcomes": [outcome]}, headers={"X-API-Key": SCORE_ONLY_KEY}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "outcomes" in response.json()["error"]["message"]


def test_the_guard_knows_the_scope_of_every_route_from_the_routers() -> None:
    app = create_app(Settings())
    guard = RequestGuard(app, app.router, KeyRing.of(Settings()), 1024)
    found = {}
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            scope = {"type": "http", "method": method.upper(), "path": concrete, "root_path": ""}
            route, needed = guard._route_of(scope)
            assert route is not None
            assert route.path == path  # type: ignore[attr-defined]
            found[(method.upper(), path)] = needed
    assert found[("POST", "/v1/outcomes")] == "outcomes"
    assert found[("POST", "/v1/admin/models/{name}/reload")] == "admin"
    assert found[("GET", "/v1/customers/{customer_id}/profile")] == "score"
    assert found[("GET", "/v1/models/{name}/performance")] == "score"
    open_routes = {route for route, needed in found.items() if needed is None}
    assert open_routes == {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/v2/health/live"),
        ("GET", "/v2/health/ready"),
    }
    assert found[("POST", "/v2/models/{name}/infer")] == "score"
