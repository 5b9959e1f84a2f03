"""Offline checks of deploy/ (run by `make lint`): nothing here needs Docker, a cluster or a Prometheus.

- the Compose file against the Compose specification's JSON Schema (deploy/schemas/compose-spec.json, from
  github.com/compose-spec/compose-spec, Apache-2.0);
- every PromQL expression of the Grafana dashboard and of the alerting rules parsed (promql-parser, Prometheus'
  own grammar), and every metric it reads one the service exports (app/metrics.py's registry, with the
  suffixes Prometheus gives counters and histograms);
- the alerting rules' structure (what Prometheus requires of a rule, and the labels our routing relies on).

The Kubernetes manifests are checked by `kubernetes-validate --strict` beside this, in the Makefile.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import yaml
from prometheus_client import REGISTRY

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_SCHEMA = DEPLOY / "schemas" / "compose-spec.json"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
# Series Prometheus itself writes for every scrape target.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_SEVERITIES = {"critical", "warning"}
# Grafana's own interval variables, replaced by a duration before the query reaches Prometheus.
_GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b")


def exported_metric_names() -> frozenset[str]:
    """Every series name the service's registry can export (app/metrics.py, and the process and platform
    collectors prometheus_client adds), whether or not a labelled series has a value yet."""
    import app.metrics  # noqa: F401  (registers the service's metrics)

    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return frozenset(names)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (a syntax error raises ValueError)."""
    return {
        node.name
        for node in _walk(promql_parser.parse(expr))
        if isinstance(node, promql_parser.VectorSelector) and node.name is not None
    }


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for attribute in ("expr", "lhs", "rhs", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, str | int | float):
            yield from _walk(child)
    for argument in getattr(node, "args", None) or ():
        yield from _walk(argument)


def dashboard_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, expression) of every query of a Grafana dashboard, rows' nested panels included, with
    Grafana's interval variables replaced as Grafana does."""
    queries = []
    for panel in _panels(json.loads(path.read_text())["panels"]):
        for target in panel.get("targets", []):
            queries.append((panel["title"], _GRAFANA_INTERVALS.sub("5m", target["expr"])))
    return queries


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def alert_rules(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(alert, expression) of every rule, and what is wrong with the file's structure."""
    document = yaml.safe_load(path.read_text())
    rules, problems = [], []
    for group in document.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or "?"
            missing = {"alert", "expr"} - rule.keys()
            if missing:
                problems.append(f"{path.name}: rule {name}: lacks {', '.join(sorted(missing))}")
                continue
            if "for" in rule and not _DURATION.match(str(rule["for"])):
                problems.append(f"{path.name}: {name}: `for: {rule['for']}` is not a duration")
            if rule.get("labels", {}).get("severity") not in _SEVERITIES:
                problems.append(f"{path.name}: {name}: labels.severity must be one of {sorted(_SEVERITIES)}")
            if not rule.get("annotations", {}).get("summary"):
                problems.append(f"{path.name}: {name}: no annotations.summary")
            rules.append((name, rule["expr"]))
    if not rules:
        problems.append(f"{path.name}: no alerting rules")
    return rules, problems


def query_problems(where: str, expr: str, exported: frozenset[str]) -> list[str]:
    try:
        names = metric_names(expr)
    except ValueError as exc:
        return [f"{where}: not PromQL: {exc}"]
    unknown = sorted(names - exported - PROMETHEUS_SERIES)
    return [f"{where}: reads {name}, which the service does not export" for name in unknown]


def compose_problems(path: Path = COMPOSE) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = validator.iter_errors(yaml.safe_load(path.read_text()))
    return [f"{path.name}: {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def problems() -> list[str]:
    exported = exported_metric_names()
    found = compose_problems()
    for dashboard in sorted(DASHBOARDS.glob("*.json")):
        for title, expr in dashboard_queries(dashboard):
            found += query_problems(f"{dashboard.name}: {title!r}", expr, exported)
    rules, structure = alert_rules(ALERTS)
    found += structure
    for name, expr in rules:
        found += query_problems(f"{ALERTS.name}: {name}", expr, exported)
    return found


def main() -> int:
    found = problems()
    sys.stderr.writelines(f"{problem}\n" for problem in found)
    sys.stdout.write(f"deploy/: {'ok' if not found else f'{len(found)} problem(s)'}\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
