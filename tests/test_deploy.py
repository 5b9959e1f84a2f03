"""deploy/: the dashboard's and the alerts' queries read metrics a real app exports, and the offline checks of
`make lint` (scripts/check_deploy.py, kubernetes-validate) pass on the shipped files and fail on broken ones."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.schemas.churn import TELCO_EXAMPLE as CUSTOMER
from scripts.check_deploy import (
    ALERTS,
    COMPOSE,
    DASHBOARDS,
    PROMETHEUS_SERIES,
    alert_rules,
    compose_problems,
    dashboard_queries,
    exported_metric_names,
    metric_names,
    problems,
    query_problems,
)

K8S = COMPOSE.parent / "k8s"


def _exposed(client: TestClient) -> set[str]:
    """The series names of a real app's /metrics after it scored."""
    assert client.post("/v1/churn/score", json={"customers": [CUSTOMER]}).status_code == 200
    text = client.get("/metrics").text
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_every_panel_and_alert_reads_metrics_the_service_exports(client: TestClient) -> None:
    exposed = _exposed(client)
    exported = exported_metric_names()
    # The names derived from the registry are the ones a real app writes (and more: series not observed yet).
    assert exposed <= exported
    assert {"clm_http_requests_total", "clm_churn_probability_bucket", "clm_model_info"} <= exposed
    queries = [expr for dashboard in DASHBOARDS.glob("*.json") for _, expr in dashboard_queries(dashboard)]
    queries += [expr for _, expr in alert_rules(ALERTS)[0]]
    read = set().union(*map(metric_names, queries))
    assert read - PROMETHEUS_SERIES <= exported
    assert len(queries) > 30
    assert problems() == []


def test_the_dashboard_covers_what_an_operator_watches() -> None:
    read = {
        name for _, expr in dashboard_queries(DASHBOARDS / "clm-scoring.json") for name in metric_names(expr)
    }
    assert {
        "clm_http_request_duration_seconds_bucket",  # latency by route
        "clm_churn_probability_bucket",  # scores by version
        "clm_lead_grades_total",
        "clm_shadow_label_changes_total",  # shadow agreement
        "clm_prediction_log_buffered",  # backlog
        "clm_prediction_log_dropped_total",
    } <= read
    alerts = {name for name, _ in alert_rules(ALERTS)[0]}
    assert {
        "ClmNoModelLoaded",
        "ClmHighErrorRate",
        "ClmPredictionLogDrops",
        "ClmShadowDisagreement",
    } <= alerts


def test_a_query_of_a_metric_not_exported_or_not_promql_is_reported() -> None:
    exported = exported_metric_names()
    assert query_problems("p", "sum(rate(clm_http_requests_total[5m]))", exported) == []
    assert query_problems("p", "rate(clm_http_request_total[5m])", exported) == [
        "p: reads clm_http_request_total, which the service does not export"
    ]
    assert "not PromQL" in query_problems("p", "sum(rate(clm_http_requests_total[5m])", exported)[0]


def test_alert_rules_without_what_prometheus_and_routing_need_are_reported(tmp_path: Path) -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    rule = rules["groups"][0]["rules"][0]
    rule["for"] = "five minutes"
    del rule["labels"]["severity"]
    broken = tmp_path / "alerts.yml"
    broken.write_text(yaml.safe_dump(rules))
    _, found = alert_rules(broken)
    assert any("not a duration" in problem for problem in found)
    assert any("severity" in problem for problem in found)


def test_the_compose_file_keeps_to_the_compose_specification(tmp_path: Path) -> None:
    assert compose_problems() == []
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["services"]["clm"]["deploy"]["replicas"] == 2
    assert compose["services"]["migrate"]["command"] == ["clm", "db", "upgrade"]
    compose["services"]["clm"]["healthcheck"] = {"test": ["CMD", "true"], "interval": 5}
    compose["services"]["clm"]["restart_policy"] = "always"
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(compose))
    found = compose_problems(broken)
    assert any("restart_policy" in problem for problem in found)
    assert any("services.clm.healthcheck.interval" in problem for problem in found)


def _kubernetes_validate(*files: Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent))
    assert command is not None, "kubernetes-validate is installed by the dev extra"
    return subprocess.run([command, "--strict", "--quiet", *map(str, files)], capture_output=True, text=True)


def test_the_manifests_pass_the_kubernetes_schemas_and_a_broken_probe_does_not(tmp_path: Path) -> None:
    manifests = sorted(K8S.glob("*.yaml"))
    assert _kubernetes_validate(*manifests).returncode == 0
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    container["readinessProbe"]["httpGet"]["path"] = 7
    broken = tmp_path / "deployment.yaml"
    broken.write_text(yaml.safe_dump(deployment))
    result = _kubernetes_validate(broken)
    assert result.returncode != 0
    assert "readinessProbe" in result.stdout + result.stderr


@pytest.mark.parametrize("variable", ["CLM_DATABASE_URL", "MLFLOW_TRACKING_URI", "CLM_API_KEY_DIGESTS"])
def test_the_deployments_give_the_settings_the_service_reads(variable: str) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    assert variable in compose["services"]["clm"]["environment"]
    k8s = (K8S / "configmap.yaml").read_text() + (K8S / "secret.yaml").read_text()
    assert f"{variable}:" in k8s
