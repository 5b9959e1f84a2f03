"""Schemathesis over every route of the OpenAPI document, with all its checks, on SQLite and on PostgreSQL.

The app is the real one: every use case's small real models (churn, products, both lead lines, diagnosis, value) from
the session's MLflow registry, the demo customers stored, and a key with every scope. Whatever a route may
legitimately answer to a generated request (404 for an unknown customer id, 413 for a batch over the limit) is
declared in the document itself, so the checks hold the service to what it says, and none is turned off.

Schemathesis' own engine runs here, as its CLI does (`schemathesis run`): every phase (the document's examples,
coverage of each schema's edges, then fuzzing; the stateful phase when the document has links), valid and
invalid requests, every check. Its pytest decorator is not used: it sets `Function._nodeid`, which pytest 9 no
longer has. `make test` runs a small budget (CLM_FUZZ_EXAMPLES, default 10 per operation and mode: seconds per
backend); `make fuzz` the long campaign (250: thousands of requests per backend).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.engine import Status, events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder
from schemathesis.python import asgi

from app.main import create_app
from model_registry.registry import ModelRegistry
from tests.conftest import ADMIN_KEY, BACKENDS, Databases, load_demo_customers, make_settings

FUZZ_EXAMPLES = int(os.environ.get("CLM_FUZZ_EXAMPLES", "10"))
EVERY_MODEL = [
    "clm-churn",
    "clm-products",
    "clm-leads-inbound",
    "clm-leads-outbound",
    "clm-diagnosis",
    "clm-value-retail",
]
# Requests sent per backend, by operation: reported after the run (tests/conftest.py, terminal summary).
SENT: dict[str, Counter[str]] = {}
PHASES: dict[str, list[str]] = {}  # per backend: each phase, and why it was skipped when it was


@pytest.fixture(params=BACKENDS)
def served_app(
    request: pytest.FixtureRequest,
    databases: Databases,
    registry: ModelRegistry,
    churn_version: int,
    products_version: int,
    inbound_version: int,
    outbound_version: int,
    diagnosis_trained: tuple[int, dict[str, float]],
    value_trained: tuple[int, dict[str, float]],
    data_dir: Path,
) -> Iterator[tuple[str, FastAPI]]:
    backend = str(request.param)
    url = databases.new(backend)
    load_demo_customers(url, data_dir)
    app = create_app(make_settings(registry, EVERY_MODEL, database_url=url))
    yield backend, app
    # Schemathesis started the app's lifespan when it loaded the document; stop it with the test.
    asgi.shutdown_lifespans()


def test_every_route_keeps_its_contract(served_app: tuple[str, FastAPI]) -> None:
    backend, app = served_app
    config = schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "max-examples": FUZZ_EXAMPLES},
            # The key scheme the document declares (X-API-Key), with a key holding every scope; the
            # ignored_auth check also sends requests without it and with a wrong one, and expects them refused.
            "auth": {"openapi": {"APIKeyHeader": {"api_key": ADMIN_KEY}}},
            # A value customer's rules across its fields, which JSON Schema cannot state (recency after t, a
            # transaction after the cut-off, a cut-off before the first purchase or in the future, an id not
            # stored with some of its summary sent), make some bodies valid by the document a 422 naming the
            # path (tests/test_value.py); everything else of that route is held to the document as elsewhere.
            # The Open Inference Protocol's tensors carry rules JSON Schema cannot state either (a shape and its
            # data's length, the same rows in every input): a body that breaks them is its 400, and one without a
            # record (shape [0]) a 422, whatever the document's schema lets through.
            "operations": [
                {
                    "include-path": "/v1/value/score",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [
                                "2xx",
                                "3xx",
                                "401",
                                "403",
                                "404",
                                "409",
                                "422",
                                "429",
                                "5xx",
                            ]
                        }
                    },
                },
                {
                    "include-path-regex": "^/v2/models/.*/infer$",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422", "429"]
                        }
                    },
                },
            ],
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    sent = SENT.setdefault(backend, Counter())
    phases = PHASES.setdefault(backend, [])
    failures: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            sent[event.recorder.label] += len(event.recorder.interactions)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(
                            f"{event.recorder.label}: {check.name}: {failure.title}\n{failure.message}\n"
                            f"{check.failure_info.code_sample}\n{_answer(event.recorder, case_id)}"
                        )
        elif isinstance(event, events.PhaseFinished):
            skipped = event.phase.skip_reason
            phases.append(event.phase.name.value + (f" (skipped: {skipped.value})" if skipped else ""))
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: error: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            failures.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            failures.extend(
                f"after the run: {failure.title}: {failure.message}" for failure in event.failures
            )
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert set(sent) >= operations, f"operations not exercised: {operations - set(sent)}"
    assert not failures, f"{len(failures)} failure(s):\n\n" + "\n\n".join(dict.fromkeys(failures))


def _answer(recorder: ScenarioRecorder, case_id: str) -> str:
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction is not None else None
    if response is None:
        return "no response"
    return f"-> {response.status_code} {response.content[:600]!r}"
