"""A team's own business with no code change: a spec in CLM_SPECS_DIR for a data set the service has never
seen (the bank's churn file), from a CSV file or from a SQL join in PostgreSQL, checked, trained, registered
and served as a churn line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score
from sqlalchemy import create_engine

from app.main import create_app
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_KEY, Databases, make_settings
from tests.test_specs import SHORT_FIT, clm
from training.data import load_dataset
from training.spec import load_spec

BANK_FILE = "bank_churn/Churn_Modelling.csv"
URL_ENV = "CLM_TEST_BANK_URL"


def bank_spec(line: str, source: str) -> str:
    return f'''use_case = "churn"
line = "{line}"
registered_model = "acme-churn-{line}"
kind = "binary"
description = "A bank's customers: probability of leaving (Exited = 1)."

[data]
{source}
id_column = "CustomerId"
id_field = "customer_id"
target_column = "Exited"
positive_values = ["1"]

[[data.leave_out]]
column = "RowNumber"
why = "the row's position in the file: says nothing about the customer"

[[data.leave_out]]
column = "Surname"
why = "a name: not a reason to leave, and personal data"

[risk]
high = 0.5
medium = 0.2
{SHORT_FIT}'''


def check_train_and_serve(tmp_path: Path, data_dir: Path, spec_file: Path, env: dict[str, str]) -> None:
    checked = clm(tmp_path, data_dir, "spec", "check", str(spec_file), **env)
    assert checked.exit_code == 0, checked.output
    assert "positive rate 20.37%" in checked.output
    trained = clm(tmp_path, data_dir, "train", "--spec", str(spec_file), **env)
    assert trained.exit_code == 0, trained.output
    spec = load_spec(spec_file)
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))
    version = registry.resolve(spec.registered_model, "champion")
    assert version is not None
    data = load_dataset(spec, data_dir)
    records = [
        {**record, "customer_id": str(customer)}
        for record, customer in zip(data.records(data.holdout), data.ids[data.holdout], strict=True)
    ]
    settings = make_settings(registry, [spec.registered_model])
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as client:
        results = []
        for start in range(0, len(records), 1000):
            body = {"line": spec.line, "customers": records[start : start + 1000], "explain": False}
            response = client.post("/v1/churn/score", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["model"]["name"] == spec.registered_model
            results += response.json()["results"]
        assert all(result["unknown_fields"] == [] for result in results)
        without_line = client.post("/v1/churn/score", json={"customers": records[:1]})
        assert without_line.status_code == 404  # this service has no default churn line
    probabilities = np.asarray([result["churn_probability"] for result in results])
    served_auc = roc_auc_score(data.target[data.holdout], probabilities)
    assert served_auc == pytest.approx(float(version.tags["holdout.roc_auc"]), abs=1e-4)
    assert served_auc > 0.8


def test_a_spec_in_the_specs_dir_for_a_new_data_set_is_checked_trained_and_served(
    tmp_path: Path, data_dir: Path
) -> None:
    specs_dir = tmp_path / "specs"
    specs_dir.mkdir()
    spec_file = specs_dir / "bank_churn.toml"
    spec_file.write_text(bank_spec("bank", f'file = "{BANK_FILE}"'))
    check_train_and_serve(tmp_path, data_dir, spec_file, {"CLM_SPECS_DIR": str(specs_dir)})


def test_a_spec_whose_data_is_a_sql_join_in_postgresql_is_checked_trained_and_served(
    tmp_path: Path, data_dir: Path, databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = pd.read_csv(data_dir / BANK_FILE)
    people = ["CustomerId", "Surname", "Geography", "Gender", "Age", "EstimatedSalary"]
    url = databases.new("postgresql", migrated=False)  # a CRM's own database, not the service's
    engine = create_engine(url)
    with engine.begin() as connection:
        rows[people].to_sql("people", connection, index=False)
        rows.drop(columns=people[1:]).to_sql("accounts", connection, index=False)
    engine.dispose()
    monkeypatch.setenv(URL_ENV, url)  # for the test's own reading of the rows it scores
    query = (
        'SELECT a."RowNumber", p."CustomerId", p."Surname", a."CreditScore", p."Geography", p."Gender", '
        'p."Age", a."Tenure", a."Balance", a."NumOfProducts", a."HasCrCard", a."IsActiveMember", '
        'p."EstimatedSalary", a."Exited" FROM people p JOIN accounts a ON a."CustomerId" = p."CustomerId"'
    )
    specs_dir = tmp_path / "specs"
    specs_dir.mkdir()
    spec_file = specs_dir / "bank_crm.toml"
    spec_file.write_text(bank_spec("bank-crm", f'sql = """{query}"""\nurl_env = "{URL_ENV}"'))
    check_train_and_serve(tmp_path, data_dir, spec_file, {"CLM_SPECS_DIR": str(specs_dir), URL_ENV: url})
