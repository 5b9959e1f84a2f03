"""One registered version everywhere: POST /v1/..., the pyfunc record model, `clm score file` and `clm score
spark` give every record the same probability and label; bad rows go to the rejects file; `mlflow models
serve` of a version answers the API's records as the API does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from app.bulk.files import read_chunks
from app.cli import clm
from app.main import create_app
from model_registry.contract import api_name
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_KEY, TELCO_FILE, make_settings
from training.data import frame_records, id_field, is_holdout, load_dataset, read_frame
from training.publish import training_run
from training.spec import find_spec

TOLERANCE = 1e-6


@dataclass(frozen=True)
class Line:
    """A model line as the four paths see it."""

    use_case: str
    line: str | None
    model: str
    route: str
    records_field: str
    probability: str
    label: str
    holdout_only: bool  # churn: every Telco customer (the Spark job's done-when); leads: the fixed holdout


LINES = {
    "churn": Line(
        "churn", None, "clm-churn", "/v1/churn/score", "customers", "churn_probability", "risk_level", False
    ),
    "inbound": Line(
        "leads",
        "inbound",
        "clm-leads-inbound",
        "/v1/leads/score",
        "leads",
        "conversion_probability",
        "grade",
        True,
    ),
    "outbound": Line(
        "leads",
        "outbound",
        "clm-leads-outbound",
        "/v1/leads/score",
        "leads",
        "conversion_probability",
        "grade",
        True,
    ),
}


def line_records(line: Line, data_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    """The line's records as a client sends them, each with its ID: the ID field and the records."""
    spec = find_spec(line.use_case, line.line)
    dataset = load_dataset(spec, data_dir)
    mask = dataset.holdout if line.holdout_only else None
    records = dataset.records(mask)
    ids = dataset.ids[dataset.holdout] if line.holdout_only else dataset.ids
    field = id_field(spec)
    for record, record_id in zip(records, ids.tolist(), strict=True):
        record[field] = record_id
    return field, records


def http_answers(
    client: TestClient, line: Line, records: list[dict[str, Any]], explain: bool = False
) -> list[dict[str, Any]]:
    results = []
    for start in range(0, len(records), 1000):
        body: dict[str, Any] = {line.records_field: records[start : start + 1000], "explain": explain}
        if line.line is not None:
            body["line"] = line.line
        response = client.post(line.route, json=body)
        assert response.status_code == 200, response.text
        results.extend(response.json()["results"])
    return results


def clm_command(registry: ModelRegistry, *args: str) -> Result:
    return CliRunner().invoke(clm, list(args), env={"MLFLOW_TRACKING_URI": registry.tracking_uri})


def assert_same(
    expected: list[dict[str, Any]], got: pd.DataFrame, id_field: str, line: Line, path: str
) -> None:
    """Every record of `expected` (the HTTP answers) has the same probability (within 1e-6) and label in `got`."""
    assert len(got) == len(expected), path
    by_id = got.set_index(got[id_field].astype(str))
    for answer in expected:
        row = by_id.loc[str(answer[id_field])]
        assert abs(row[line.probability] - answer[line.probability]) <= TOLERANCE, (path, answer)
        assert row[line.label] == answer[line.label], (path, answer)


@pytest.fixture
def line_clients(client: TestClient, leads_client: TestClient) -> dict[str, TestClient]:
    return {"churn": client, "inbound": leads_client, "outbound": leads_client}


@pytest.mark.parametrize("name", list(LINES))
def test_the_api_the_pyfunc_model_a_file_and_spark_score_every_record_the_same(
    name: str,
    registry: ModelRegistry,
    line_clients: dict[str, TestClient],
    inbound_version: int,
    outbound_version: int,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    line = LINES[name]
    id_field, records = line_records(line, data_dir)
    answers = http_answers(line_clients[name], line, records)
    version = registry.resolve(line.model, "champion")
    assert version is not None

    mlflow.set_tracking_uri(registry.tracking_uri)
    record_model = mlflow.pyfunc.load_model(f"models:/{line.model}@champion")
    assert_same(answers, record_model.predict(pd.DataFrame.from_records(records)), id_field, line, "pyfunc")

    source = tmp_path / "records.parquet"
    pd.DataFrame.from_records(records).to_parquet(source)
    result = clm_command(
        registry, "score", "file", str(source), str(tmp_path / "scores.csv"), "--model", line.model
    )
    assert result.exit_code == 0, result.output
    assert f"{len(records)} rows, {len(records)} scored, none refused" in result.output
    assert "rows/s" in result.output
    scored = pd.read_csv(tmp_path / "scores.csv", dtype={id_field: str})
    assert_same(answers, scored, id_field, line, "clm score file")
    assert set(scored["version"]) == {version.version}
    assert set(scored["model"]) == {line.model}

    out = tmp_path / "spark-scores"
    result = clm_command(
        registry, "score", "spark", str(source), str(out), "--model", line.model, "--master", "local[1]"
    )
    assert result.exit_code == 0, result.output
    from_spark = pd.read_parquet(out)
    assert_same(answers, from_spark, id_field, line, "clm score spark")
    assert set(from_spark["version"]) == {version.version}
    assert pd.read_parquet(tmp_path / "spark-scores_rejects").empty


def test_a_file_with_bad_rows_is_scored_and_each_bad_row_is_refused_with_its_reason(
    registry: ModelRegistry, churn_version: int, data_dir: Path, tmp_path: Path
) -> None:
    # Telco's own file, column names as the data set spells them: 11 customers of tenure 0 have a blank
    # TotalCharges, which the API refuses as a number too.
    out, rejects = tmp_path / "scores.parquet", tmp_path / "bad.csv"
    result = clm_command(
        registry, "score", "file", str(data_dir / TELCO_FILE), str(out), "--model", "clm-churn",
        "--rejects", str(rejects), "--chunk-rows", "1000",
    )  # fmt: skip

    assert result.exit_code == 1
    assert "7043 rows, 7032 scored, 11 refused" in result.output
    scored = pd.read_parquet(out)
    assert len(scored) == 7032
    assert scored["churn_probability"].between(0, 1).all()
    assert set(scored["version"]) == {churn_version}
    refused = pd.read_csv(rejects, dtype=str, keep_default_na=False)
    assert len(refused) == 11
    assert (refused["tenure"] == "0").all()
    assert refused["reason"].str.startswith("total_charges: must be a finite number").all()
    telco = pd.read_csv(data_dir / TELCO_FILE)
    for _, row in refused.iterrows():
        assert telco.loc[int(row["row"]), "customerID"] == row["customer_id"]
    assert not set(refused["customer_id"]) & set(scored["customer_id"])


def test_reasons_in_a_file_are_the_apis(
    registry: ModelRegistry, client: TestClient, churn_version: int, data_dir: Path, tmp_path: Path
) -> None:
    line = LINES["churn"]
    id_field, records = line_records(line, data_dir)
    records = records[:300]
    answers = http_answers(client, line, records, explain=True)
    source = tmp_path / "customers.csv"
    pd.DataFrame.from_records(records).to_csv(source, index=False)

    result = clm_command(
        registry,
        "score",
        "file",
        str(source),
        str(tmp_path / "out.parquet"),
        "--model",
        "clm-churn",
        "--explain",
    )

    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(tmp_path / "out.parquet")
    for answer, (_, row) in zip(answers, scored.iterrows(), strict=True):
        assert row[id_field] == answer[id_field]
        factors = json.loads(row["top_factors"])
        assert [f["feature"] for f in factors] == [f["feature"] for f in answer["top_factors"]]
        assert [f["impact"] for f in factors] == pytest.approx(
            [f["impact"] for f in answer["top_factors"]], abs=1e-6
        )


def test_a_file_is_read_a_chunk_at_a_time(
    registry: ModelRegistry, churn_version: int, data_dir: Path
) -> None:
    contract = registry.load("clm-churn", churn_version).contract
    sizes = [len(chunk) for chunk in read_chunks(data_dir / TELCO_FILE, contract, chunk_rows=1000)]
    assert sizes == [1000] * 7 + [43]


def test_an_unknown_model_or_version_is_named(
    registry: ModelRegistry, churn_version: int, data_dir: Path, tmp_path: Path
) -> None:
    for model, message in (
        ("clm-churn/999", "has no version 999"),
        ("clm-churn@nobody", "has no version with alias"),
    ):
        result = clm_command(
            registry, "score", "file", str(data_dir / TELCO_FILE), str(tmp_path / "o.csv"), "--model", model
        )
        assert result.exit_code == 2
        assert message in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_mlflow_models_serve_answers_the_apis_records_as_the_api_does(
    registry: ModelRegistry, client: TestClient, churn_version: int, data_dir: Path, tmp_path: Path
) -> None:
    line = LINES["churn"]
    id_field, records = line_records(line, data_dir)
    records = records[:500]
    answers = http_answers(client, line, records)
    port = _free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", "models:/clm-churn@champion",
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for(server, f"http://127.0.0.1:{port}/ping", tmp_path / "serve.log")
        # The body of POST /v1/churn/score, as MLflow's scoring protocol wraps records.
        body = json.dumps({"dataframe_records": records}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.load(response)["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert_same(answers, pd.DataFrame.from_records(predictions), id_field, line, "mlflow models serve")


def _wait_for(server: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow models serve exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"mlflow models serve did not answer in {timeout:.0f} s: {log.read_text()[-2000:]}")


def test_the_record_model_offers_products_with_the_apis_propensities(
    registry: ModelRegistry, client: TestClient, products_version: int, data_dir: Path
) -> None:
    spec = find_spec("products")
    dataset = load_dataset(spec, data_dir)
    records = dataset.records(dataset.holdout)
    for record, customer_id in zip(records, dataset.ids[dataset.holdout].tolist(), strict=True):
        record[id_field(spec)] = customer_id
    answers = []
    for start in range(0, len(records), 1000):
        body = {"customers": records[start : start + 1000], "top_n": 7, "explain": False}
        response = client.post("/v1/products/match", json=body)
        assert response.status_code == 200, response.text
        answers.extend(response.json()["results"])

    mlflow.set_tracking_uri(registry.tracking_uri)
    record_model = mlflow.pyfunc.load_model(f"models:/clm-products/{products_version}")
    table = record_model.predict(pd.DataFrame.from_records(records), params={"top_n": 7})

    propensities = [c for c in table.columns if c.endswith("_propensity")]
    assert len(propensities) == 7
    for answer, (_, row) in zip(answers, table.iterrows(), strict=True):
        offered = {o["product"]: o["propensity"] for o in answer["recommendations"]}
        assert row["customer_id"] == answer["customer_id"]
        for column in propensities:
            product = column.removesuffix("_propensity")
            if product in offered:
                assert abs(row[column] - offered[product]) <= TOLERANCE
            else:
                assert pd.isna(row[column])  # owned, or not eligible: never offered
        assert [o["product"] for o in json.loads(row["recommendations"])] == list(offered)


def test_the_record_model_diagnoses_listings_as_the_api_does(
    registry: ModelRegistry,
    diagnosis_client: TestClient,
    diagnosis_trained: tuple[int, dict[str, float]],
    data_dir: Path,
) -> None:
    frame = read_frame(find_spec("diagnosis"), data_dir).rename(columns=api_name)
    listings = frame_records(frame[[is_holdout(i) for i in frame["product_id"]]].drop(columns=["units_sold"]))
    answers = []
    for start in range(0, len(listings), 1000):
        response = diagnosis_client.post("/v1/diagnosis", json={"listings": listings[start : start + 1000]})
        assert response.status_code == 200, response.text
        answers.extend(response.json()["results"])

    mlflow.set_tracking_uri(registry.tracking_uri)
    record_model = mlflow.pyfunc.load_model(f"models:/clm-diagnosis/{diagnosis_trained[0]}")
    table = record_model.predict(pd.DataFrame.from_records(listings))

    for answer, (_, row) in zip(answers, table.iterrows(), strict=True):
        assert row["product_id"] == str(answer["product_id"])
        assert abs(row["effect_probability"] - answer["effect_probability"]) <= TOLERANCE
        assert row["percentile"] == pytest.approx(answer["percentile"])
        assert row["segment"] == answer["segment"]
        assert json.loads(row["gaps"]) == answer["gaps"]


def test_a_version_registered_before_the_record_model_still_serves_and_scores_files(
    registry: ModelRegistry, churn_version: int, data_dir: Path, tmp_path: Path
) -> None:
    # As versions were registered before: MLflow's XGBoost flavour on the encoded matrix, the bundle beside it.
    bundle = registry.load("clm-churn", churn_version)
    old = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))
    with training_run(old, find_spec("churn")):
        booster = bundle.boosters["model"]
        info = mlflow.xgboost.log_model(
            booster, name="model", model_format="ubj", pip_requirements=["xgboost"]
        )
        saved = tmp_path / "bundle"
        bundle.save(saved, booster_files={"model": "model.ubj"})
        old.client.log_model_artifacts(info.model_id, str(saved))
        version = int(mlflow.register_model(f"models:/{info.model_id}", "clm-churn").version)
    old.set_alias("clm-churn", "champion", version)
    line = LINES["churn"]
    _, records = line_records(line, data_dir)

    with TestClient(create_app(make_settings(old, ["clm-churn"]))) as served:
        served.headers["X-API-Key"] = SCORE_KEY
        answers = http_answers(served, line, records[:200])
    source = tmp_path / "customers.parquet"
    pd.DataFrame.from_records(records[:200]).to_parquet(source)
    result = clm_command(old, "score", "file", str(source), str(tmp_path / "out.csv"), "--model", "clm-churn")

    assert result.exit_code == 0, result.output
    assert_same(
        answers, pd.read_csv(tmp_path / "out.csv"), "customer_id", line, "clm score file, old version"
    )
