"""Check the served lead lines from outside: score each line's fixed holdout through POST /v1/leads/score and
compare the ROC AUC with the one training logged for the served version; show observed conversion per grade;
time ranking a pool of 1,000 leads in one POST /v1/leads/rank call, with reasons and without.

    PYTHONPATH=$PWD .venv/bin/python scripts/leads_check.py                      # in-process app over var/
    PYTHONPATH=$PWD .venv/bin/python scripts/leads_check.py --url http://127.0.0.1:8101 --key demo-key
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import pandas as pd
import typer
from sklearn.metrics import roc_auc_score

from training.data import id_field, load_dataset
from training.spec import all_specs

BATCH = 1000
app = typer.Typer(add_completion=False)


@contextmanager
def _client(url: str | None, key: str, models: list[str]) -> Iterator[httpx.Client]:
    if url:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as client:
            yield client
        return
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(models=models))) as client:
        client.headers["X-API-Key"] = key
        yield client


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    if response.status_code != 200:
        _fail(f"{path}: {response.status_code} {response.text}")
    return response.json()  # type: ignore[no-any-return]


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


@app.command()
def main(
    url: Annotated[str | None, typer.Option(help="A running service; default: the app in-process.")] = None,
    key: Annotated[str, typer.Option(help="API key with the score scope.")] = "demo-key",
    data_dir: Annotated[Path, typer.Option(envvar="CLM_DATA_DIR")] = Path("../shared/data"),
    rank_calls: Annotated[int, typer.Option(help="Timed calls ranking 1,000 leads.")] = 20,
) -> None:
    specs = [s for s in all_specs() if s.use_case == "leads"]
    with _client(url, key, [s.registered_model for s in specs]) as client:
        served = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
        for spec in specs:
            if spec.registered_model not in served:
                typer.echo(f"{spec.registered_model}: not served, skipped")
                continue
            dataset = load_dataset(spec, data_dir)
            leads = dataset.records(dataset.holdout)
            for lead, record_id in zip(leads, dataset.ids[dataset.holdout].tolist(), strict=True):
                lead[id_field(spec)] = record_id
            results: list[dict[str, Any]] = []
            version = None
            for start in range(0, len(leads), BATCH):
                body = {"line": spec.line, "leads": leads[start : start + BATCH], "explain": False}
                answer = _post(client, "/v1/leads/score", body)
                version = answer["model"]["version"]
                results += answer["results"]
            y = dataset.target[dataset.holdout]
            probabilities = np.array([r["conversion_probability"] for r in results])
            logged = served[spec.registered_model]["holdout_metrics"]["roc_auc"]
            typer.echo(
                f"{spec.registered_model} version {version}: holdout ROC AUC through the API "
                f"{roc_auc_score(y, probabilities):.4f} (training logged {logged:.4f}), {len(y)} leads"
            )
            grades = pd.DataFrame({"grade": [r["grade"] for r in results], "converted": y})
            table = grades.groupby("grade")["converted"].agg(leads="size", conversion="mean")
            table["lift"] = table["conversion"] / y.mean()
            typer.echo(table.to_string(float_format=lambda v: f"{v:.3f}"))
            for explain in (True, False):
                _time_rank(client, spec.line or "", leads[:BATCH], rank_calls, explain)


def _time_rank(
    client: httpx.Client, line: str, pool: list[dict[str, Any]], calls: int, explain: bool
) -> None:
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        ranked = _post(client, "/v1/leads/rank", {"line": line, "leads": pool, "explain": explain})["results"]
        latencies.append(time.perf_counter() - started)
    probabilities = [r["conversion_probability"] for r in ranked]
    if probabilities != sorted(probabilities, reverse=True) or [r["rank"] for r in ranked] != list(
        range(1, len(pool) + 1)
    ):
        _fail(f"{line}: the ranked pool is not sorted by score with ranks 1..{len(pool)}")
    if not all(r["grade"] in "ABCD" and (r["top_factors"] is not None) == explain for r in ranked):
        _fail(f"{line}: a ranked lead lacks its grade or its reasons")
    ms = np.array(latencies) * 1000
    typer.echo(
        f"rank {len(pool)} {line} leads {'with' if explain else 'without'} reasons in one call, {calls} calls: "
        f"median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms"
    )


if __name__ == "__main__":
    app()
