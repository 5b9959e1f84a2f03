"""The Open Inference Protocol V2 (REST): the protocol's own client against a real served app, and its rules.

tritonclient speaks HTTP to a server process (a TestClient cannot serve it): the service is started as a user
starts it, `python -m app`, on a free port, serving the session's real churn and products models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from app.schemas.churn import TELCO_EXAMPLE as CUSTOMER
from app.schemas.diagnosis import LISTING_EXAMPLE
from app.schemas.leads import INBOUND_EXAMPLE
from model_registry.registry import ModelRegistry
from tests.conftest import API_KEYS, SCORE_KEY
from tests.test_server import free_port
from training.data import load_dataset
from training.spec import find_spec

BATCH = 1000


@pytest.fixture(scope="module")
def server(
    registry: ModelRegistry,
    churn_version: int,
    products_version: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """`python -m app` serving churn and products; its address (host:port), once ready."""
    folder = tmp_path_factory.mktemp("open-inference")
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "CLM_MODELS": '["clm-churn", "clm-products"]',
        "CLM_API_KEYS": json.dumps(API_KEYS),
        "CLM_DATABASE_URL": f"sqlite:///{folder / 'clm.db'}",
        "CLM_PORT": str(port),
        "CLM_WORKERS": "1",
        "CLM_PROFILE_REFRESH": "false",
        "CLM_LOG_LEVEL": "WARNING",
    }
    with open(folder / "stderr.log", "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "app"], env=env, stderr=stderr)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not _ready(address):
            assert process.poll() is None, (folder / "stderr.log").read_text()
            assert time.monotonic() < deadline, "the service did not get ready in 90 s"
            time.sleep(0.3)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/health/ready", timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def _post(address: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://{address}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": SCORE_KEY},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _tensors(records: list[dict[str, Any]], metadata: dict[str, Any]) -> list[triton.InferInput]:
    """One tensor per input the model's metadata lists, typed as it says (a number missing is NaN)."""
    tensors = []
    for spec in metadata["inputs"]:
        column = [record.get(spec["name"]) for record in records]
        if spec["datatype"] == "BYTES":
            if all(value is None for value in column):
                continue  # a field none of the records has (the id here): not sent
            data = np.array([str(value) for value in column], dtype=object)
        else:
            data = np.array([np.nan if value is None else value for value in column], dtype=np.float32)
        tensor = triton.InferInput(spec["name"], [len(records)], spec["datatype"])
        tensor.set_data_from_numpy(data, binary_data=False)
        tensors.append(tensor)
    return tensors


def test_tritonclient_scores_the_churn_holdout_as_the_v1_route_does(
    server: str, churn_version: int, data_dir: Path
) -> None:
    dataset = load_dataset(find_spec("churn"), data_dir)
    records = dataset.records(dataset.holdout)
    client = triton.InferenceServerClient(server, network_timeout=120.0)
    headers = {"X-API-Key": SCORE_KEY}
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("clm-churn", headers=headers)
    metadata = client.get_model_metadata("clm-churn", headers=headers)
    assert metadata["versions"] == [str(churn_version)]
    assert {"tenure", "contract", "monthly_charges"} <= {i["name"] for i in metadata["inputs"]}
    over_v2: list[float] = []
    over_v1: list[float] = []
    for start in range(0, len(records), BATCH):
        batch = records[start : start + BATCH]
        answer = client.infer(
            "clm-churn",
            _tensors(batch, metadata),
            outputs=[triton.InferRequestedOutput("probability", binary_data=False)],
            headers=headers,
        )
        assert answer.get_response()["model_version"] == str(churn_version)
        over_v2 += answer.as_numpy("probability").tolist()
        v1 = _post(server, "/v1/churn/score", {"customers": batch, "explain": False})
        over_v1 += [result["churn_probability"] for result in v1["results"]]
    assert len(over_v2) == len(records) == 1407
    assert over_v2 == over_v1


def test_tritonclient_is_told_the_protocols_error(server: str) -> None:
    client = triton.InferenceServerClient(server)
    with pytest.raises(InferenceServerException, match="not served"):
        client.get_model_metadata("clm-nothing", headers={"X-API-Key": SCORE_KEY})
    with pytest.raises(InferenceServerException, match="API key"):
        client.get_model_metadata("clm-churn")


def _infer_body(records: list[dict[str, Any]], datatypes: dict[str, str]) -> dict[str, Any]:
    """The records as tensors of the given types (BYTES written as text, as a tensor client writes them)."""
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(records)],
                "datatype": datatype,
                "data": [str(r[name]) if datatype == "BYTES" else r[name] for r in records],
            }
            for name, datatype in datatypes.items()
        ]
    }


def _churn_body(client: TestClient) -> dict[str, Any]:
    """The example customer as tensors typed as the churn model's metadata types its fields."""
    inputs = client.get("/v2/models/clm-churn").json()["inputs"]
    return _infer_body([CUSTOMER], {i["name"]: i["datatype"] for i in inputs if i["name"] in CUSTOMER})


def test_the_tabular_content_type_with_n_by_1_tensors_scores_as_the_v1_route(client: TestClient) -> None:
    body = _churn_body(client)
    for tensor in body["inputs"]:
        tensor["shape"], tensor["data"] = [1, 1], [tensor["data"]]
    body["parameters"] = {"content_type": "pd"}
    body["id"] = "call-7"
    answer = client.post("/v2/models/clm-churn/infer", json=body)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    v1 = client.post("/v1/churn/score", json={"customers": [CUSTOMER]}).json()["results"][0]
    assert outputs["probability"] == {
        "name": "probability",
        "shape": [1],
        "datatype": "FP64",
        "data": [v1["churn_probability"]],
    }
    assert outputs["risk_level"]["data"] == [v1["risk_level"]]
    assert answer.json()["id"] == "call-7"


def test_products_answer_one_propensity_per_product_and_minus_one_where_not_offered(
    client: TestClient,
) -> None:
    answer = client.post("/v2/models/clm-products/infer", json=_churn_body(client))
    assert answer.status_code == 200, answer.text
    by_product = {o["name"]: o["data"][0] for o in answer.json()["outputs"]}
    offers = client.post("/v1/products/match", json={"customers": [CUSTOMER], "top_n": 10}).json()
    offered = {o["product"]: o["propensity"] for o in offers["results"][0]["recommendations"]}
    assert offered
    assert {p: by_product[p] for p in offered} == offered
    assert all(value == -1 for product, value in by_product.items() if product not in offered)
    assert len(by_product) > len(offered)  # the customer owns some products already


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        (lambda body: body["inputs"][0].update(shape=[2]), 400, "shape [2] but 1 value(s)"),
        (lambda body: body["inputs"][0].update(shape=[1, 3]), 400, "[n] or [n, 1]"),
        (lambda body: body["inputs"].append(dict(body["inputs"][0])), 400, "more than once"),
        (lambda body: body.update(parameters={"content_type": "np"}), 400, "'np' is not served"),
        (lambda body: body.update(outputs=[{"name": "grade"}]), 400, "unknown output(s) grade"),
        (lambda body: body.update(inputs="tenure"), 400, "inputs"),
        (lambda body: _tensor(body, "tenure").update(data=["12"]), 400, "FP32 data must be numbers"),
        (lambda body: _tensor(body, "tenure").update(data=[-1e39]), 422, "customers[0].tenure"),
    ],
)
def test_a_request_the_protocol_refuses_is_answered_in_its_error_shape(
    client: TestClient, change: Any, status: int, says: str
) -> None:
    body = _churn_body(client)
    change(body)
    answer = client.post("/v2/models/clm-churn/infer", json=body)
    assert answer.status_code == status, answer.text
    assert list(answer.json()) == ["error"]
    assert says in answer.json()["error"]


def _tensor(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in body["inputs"] if t["name"] == name)


def test_model_routes_name_the_version_served_and_refuse_others(
    client: TestClient, churn_version: int
) -> None:
    assert client.get(f"/v2/models/clm-churn/versions/{churn_version}/ready").json() == {
        "name": "clm-churn",
        "ready": True,
    }
    other = client.get(f"/v2/models/clm-churn/versions/{churn_version + 100}")
    assert other.status_code == 404
    assert other.json() == {
        "error": f"version '{churn_version + 100}' of clm-churn is not served; version {churn_version} is"
    }
    metadata = client.get("/v2/models/clm-churn").json()
    assert metadata["outputs"] == [
        {"name": "probability", "datatype": "FP64", "shape": [-1]},
        {"name": "risk_level", "datatype": "BYTES", "shape": [-1]},
    ]
    types = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert types["tenure"] == "FP32"
    assert types["contract"] == "BYTES"
    assert types["customer_id"] == "BYTES"
    assert client.get("/v2").json()["extensions"] == []


def test_the_same_keys_guard_the_protocol_and_its_calls_are_counted(client: TestClient) -> None:
    body = _churn_body(client)
    refused = client.post("/v2/models/clm-churn/infer", json=body, headers={"X-API-Key": ""})
    assert refused.status_code == 401
    assert "API key" in refused.json()["error"]
    assert client.get("/v2/health/live", headers={"X-API-Key": ""}).json() == {"live": True}
    assert client.post("/v2/models/clm-churn/infer", json=body).status_code == 200
    exposition = client.get("/metrics").text
    assert 'route="/v2/models/{name}/infer",status="200"' in exposition
    assert 'route="/v2/models/{name}/infer",status="401"' in exposition


def _typed_body(client: TestClient, model: str, record: dict[str, Any]) -> dict[str, Any]:
    """One record as tensors typed as the model's metadata types its fields (fields it lacks left out)."""
    inputs = client.get(f"/v2/models/{model}").json()["inputs"]
    return _infer_body(
        [record], {i["name"]: i["datatype"] for i in inputs if record.get(i["name"]) is not None}
    )


def test_a_lead_line_answers_its_probability_score_and_grade_as_the_v1_route(
    leads_client: TestClient,
) -> None:
    answer = leads_client.post(
        "/v2/models/clm-leads-inbound/infer",
        json=_typed_body(leads_client, "clm-leads-inbound", INBOUND_EXAMPLE),
    )
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"][0] for o in answer.json()["outputs"]}
    v1 = leads_client.post("/v1/leads/score", json={"line": "inbound", "leads": [INBOUND_EXAMPLE]}).json()
    expected = v1["results"][0]
    assert outputs == {
        "probability": expected["conversion_probability"],
        "score": expected["score"],
        "grade": expected["grade"],
    }


def test_a_listing_is_diagnosed_with_its_effect_probability(diagnosis_client: TestClient) -> None:
    body = _typed_body(diagnosis_client, "clm-diagnosis", LISTING_EXAMPLE)
    answer = diagnosis_client.post("/v2/models/clm-diagnosis/infer", json=body)
    assert answer.status_code == 200, answer.text
    v1 = diagnosis_client.post("/v1/diagnosis", json={"listings": [LISTING_EXAMPLE]}).json()
    assert answer.json()["outputs"] == [
        {
            "name": "probability",
            "shape": [1],
            "datatype": "FP64",
            "data": [v1["results"][0]["effect_probability"]],
        }
    ]


def test_a_value_model_is_not_one_the_protocol_serves_and_says_which_route_does(
    registry: ModelRegistry, value_trained: tuple[int, dict[str, float]]
) -> None:
    from app.main import create_app
    from tests.conftest import make_settings

    settings = make_settings(registry, ["clm-value-retail"])
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as value_client:
        for path in ("/v2/models/clm-value-retail", "/v2/models/clm-value-retail/ready"):
            answer = value_client.get(path)
            assert answer.status_code == 404, answer.text
            assert "POST /v1/value/score serves it" in answer.json()["error"]
        infer = value_client.post("/v2/models/clm-value-retail/infer", json={"inputs": []})
        assert infer.status_code in (400, 404), infer.text
