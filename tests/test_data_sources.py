"""A spec's data from a CSV file, a Parquet file or a SQL query (PostgreSQL): the same rows make the same
dataset and the same model, whatever the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine

from model_registry.registry import ModelRegistry
from tests.conftest import Databases, small
from training.binary import train_binary
from training.data import DataError, Dataset, load_dataset
from training.spec import SPECS_DIR, DataSpec, ModelSpec, find_spec, load_spec

URL_ENV = "CLM_TEST_CRM_URL"
# The Telco columns as a CRM might keep them: the customer in one table, the services and bill in another.
CUSTOMER_COLUMNS = ["customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "Churn"]


def with_data(spec: ModelSpec, **data: Any) -> ModelSpec:
    return spec.model_copy(update={"data": spec.data.model_copy(update=data)})


def assert_same_dataset(expected: Dataset, actual: Dataset) -> None:
    pd.testing.assert_frame_equal(expected.features, actual.features)
    np.testing.assert_array_equal(expected.target, actual.target)
    np.testing.assert_array_equal(expected.holdout, actual.holdout)
    np.testing.assert_array_equal(expected.validation, actual.validation)


def test_a_parquet_file_at_an_absolute_path_gives_the_same_dataset_as_the_csv(
    tmp_path: Path, data_dir: Path
) -> None:
    spec = find_spec("churn")
    assert spec.data.file is not None
    # As a Parquet export keeps it: TotalCharges is text with its blanks, the spec's missing values.
    parquet = tmp_path / "telco.parquet"
    pd.read_csv(data_dir / spec.data.file).to_parquet(parquet)

    from_parquet = load_dataset(with_data(spec, file=str(parquet)), data_dir)

    assert_same_dataset(load_dataset(spec, data_dir), from_parquet)
    assert from_parquet.features["total_charges"].isna().sum() == 11


def test_a_query_joining_two_tables_trains_the_same_model_as_the_csv_of_its_rows(
    tmp_path: Path, data_dir: Path, databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    telco = find_spec("churn")
    assert telco.data.file is not None
    rows = pd.read_csv(data_dir / telco.data.file).sort_values("customerID")
    url = databases.new("postgresql", migrated=False)  # a CRM's own database, not the service's
    engine = create_engine(url)
    with engine.begin() as connection:
        rows[CUSTOMER_COLUMNS].to_sql("customers", connection, index=False)
        rows.drop(columns=CUSTOMER_COLUMNS[1:]).to_sql("services", connection, index=False)
    engine.dispose()
    monkeypatch.setenv(URL_ENV, url)
    # The file's column order, so both sources give the booster the same matrix.
    selected = ", ".join(f'{"c" if c in CUSTOMER_COLUMNS else "s"}."{c}"' for c in rows.columns)
    query = (
        f'SELECT {selected} FROM customers c JOIN services s ON s."customerID" = c."customerID" ORDER BY 1'
    )
    spec_text = (SPECS_DIR / "churn.toml").read_text()
    spec_file = tmp_path / "churn_from_crm.toml"
    spec_file.write_text(
        spec_text.replace(f'file = "{telco.data.file}"', f'sql = """{query}"""\nurl_env = "{URL_ENV}"')
    )
    from_query = small(load_spec(spec_file))
    csv_file = tmp_path / "telco_sorted.csv"
    rows.to_csv(csv_file, index=False)
    from_csv = small(with_data(telco, file=str(csv_file)))

    assert_same_dataset(load_dataset(from_csv, data_dir), load_dataset(from_query, data_dir))
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))
    csv_registry = ModelRegistry(f"sqlite:///{tmp_path / 'csv.db'}", str(tmp_path / "csv-artifacts"))
    ref, figures = train_binary(from_query, data_dir, registry)
    _, csv_figures = train_binary(from_csv, data_dir, csv_registry)

    assert figures == csv_figures
    assert float(registry.get_version(ref.name, ref.version).tags["holdout.roc_auc"]) == pytest.approx(
        csv_figures["roc_auc"], abs=1e-6
    )
    assert figures["roc_auc"] > 0.8
    assert figures["rows"] == 1407


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({}, "exactly one of `file` (CSV or Parquet) and `sql`"),
        ({"file": "a.csv", "sql": "SELECT 1", "url_env": "X"}, "exactly one of `file`"),
        ({"sql": "SELECT 1"}, "`sql` needs `url_env`"),
        ({"file": "a.csv", "url_env": "X"}, "`url_env` goes with `sql`"),
        ({"file": "a.parquet", "separator": ";"}, "`separator` applies to CSV files only"),
        ({"sql": "SELECT 1", "url_env": "X", "id_column": "__row__"}, "name an ID column"),
    ],
)
def test_a_spec_names_its_data_as_exactly_one_file_or_query(source: dict[str, str], message: str) -> None:
    data = {"id_column": "id", "target_column": "y", "positive_values": ["1"], **source}

    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DataSpec.model_validate(data)


def test_a_query_whose_url_variable_is_not_set_names_the_variable(data_dir: Path) -> None:
    spec = with_data(find_spec("churn"), file=None, sql="SELECT 1", url_env="CLM_TEST_UNSET_URL")

    with pytest.raises(DataError, match=r"\$CLM_TEST_UNSET_URL, which is not set"):
        load_dataset(spec, data_dir)


def test_a_failing_query_says_why_without_the_password(
    data_dir: Path, databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = databases.new("postgresql", migrated=False).replace("postgres@", "postgres:s3cret@")
    monkeypatch.setenv(URL_ENV, url)
    spec = with_data(find_spec("churn"), file=None, sql="SELECT * FROM no_such_table", url_env=URL_ENV)

    with pytest.raises(DataError, match='failed: relation "no_such_table" does not exist') as raised:
        load_dataset(spec, data_dir)

    assert "s3cret" not in str(raised.value)


def test_every_column_a_spec_names_must_be_in_the_data(data_dir: Path) -> None:
    spec = with_data(find_spec("churn", "card"), categorical=["Card_Tier"])

    with pytest.raises(DataError, match=r"has no column 'Card_Tier' \(categorical\)"):
        load_dataset(spec, data_dir)
