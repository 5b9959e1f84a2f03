"""The customer store on SQLite and PostgreSQL: migrations, and `clm ingest customers` loading the Telco file."""

from __future__ import annotations

import csv
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import clm
from app.db import ALEMBIC_INI, Database
from app.models import Base, Customer
from app.repositories import customers as customer_repo
from app.schemas.churn import TELCO_EXAMPLE
from tests.conftest import TELCO_FILE


@pytest.fixture
def database(database_url: str) -> Database:
    opened = Database(database_url)
    yield opened  # type: ignore[misc]
    opened.dispose()


@pytest.fixture
def migrated_here(empty_database_url: str) -> Database:
    """A database this test migrated from nothing."""
    opened = Database(empty_database_url)
    opened.upgrade()
    yield opened  # type: ignore[misc]
    opened.dispose()


def telco_rows(data_dir: Path, count: int) -> tuple[list[str], list[list[str]]]:
    with (data_dir / TELCO_FILE).open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [row for _, row in zip(range(count), reader, strict=False)]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def ingest(database_url: str, *args: str) -> object:
    return CliRunner().invoke(clm, ["ingest", "customers", *args], env={"CLM_DATABASE_URL": database_url})


def stored(database: Database) -> dict[str, Customer]:
    with database.session() as session:
        return {c.customer_id: c for c in session.scalars(select(Customer))}


def test_the_migrations_build_exactly_the_schema_the_models_describe(migrated_here: Database) -> None:
    with migrated_here.engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    assert differences == []


def test_upgrading_twice_is_harmless_and_the_migrations_downgrade_cleanly(migrated_here: Database) -> None:
    migrated_here.upgrade()
    config = Config(str(ALEMBIC_INI))
    with migrated_here.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    migrated_here.upgrade()
    assert stored(migrated_here) == {}


def test_ingest_loads_every_telco_customer_under_api_field_names(
    database_url: str, database: Database, data_dir: Path
) -> None:
    result = ingest(database_url, str(data_dir / TELCO_FILE), "--batch-size", "1000")
    assert result.exit_code == 0, result.output
    assert "7043 rows: 7043 new, 0 updated, 0 unchanged, 0 rejected" in result.output
    customers = stored(database)
    assert len(customers) == 7043
    with database.engine.connect() as connection:
        first = customer_repo.get_records(connection, ["7590-VHVEG"])["7590-VHVEG"]
    assert first == TELCO_EXAMPLE  # the file's first customer, as the API names its fields
    # The 11 customers of tenure 0 have a blank TotalCharges: stored as missing, not rejected.
    assert sum(c.tenure == 0 and c.total_charges is None for c in customers.values()) == 11
    assert all(c.updated_at.tzinfo is not None for c in customers.values())


def test_bad_rows_are_rejected_with_reasons_and_the_good_ones_stored(
    database_url: str, database: Database, data_dir: Path, tmp_path: Path
) -> None:
    header, rows = telco_rows(data_dir, 12)
    column = {name: i for i, name in enumerate(header)}
    bad_tenure = list(rows[3])
    bad_tenure[column["tenure"]] = "twelve"
    no_id = list(rows[5])
    no_id[column["customerID"]] = ""
    negative = list(rows[8])
    negative[column["MonthlyCharges"]] = "-5"
    short = rows[10][:4]
    rows[3], rows[5], rows[8], rows[10] = bad_tenure, no_id, negative, short
    rejects = tmp_path / "rejects.csv"

    result = ingest(
        database_url,
        str(write_csv(tmp_path / "customers.csv", header, rows)),
        "--batch-size",
        "5",
        "--rejects",
        str(rejects),
    )

    assert result.exit_code == 1
    assert "12 rows: 8 new, 0 updated, 0 unchanged, 4 rejected" in result.output
    with rejects.open(newline="") as handle:
        rejected = {int(r["line"]): r["reasons"] for r in csv.DictReader(handle)}
    assert set(rejected) == {5, 7, 10, 12}  # file lines: the header is line 1
    assert rejected[5].startswith("tenure='twelve'")
    assert rejected[7].startswith("customer_id=''")
    assert rejected[10].startswith("monthly_charges='-5'")
    assert "fewer values" in rejected[12]
    assert len(stored(database)) == 8


def test_loading_the_same_file_again_changes_nothing_and_a_changed_row_is_updated(
    database_url: str, database: Database, data_dir: Path, tmp_path: Path
) -> None:
    header, rows = telco_rows(data_dir, 20)
    path = write_csv(tmp_path / "customers.csv", header, rows)
    assert ingest(database_url, str(path)).exit_code == 0
    before = {k: c.updated_at for k, c in stored(database).items()}

    again = ingest(database_url, str(path))
    assert "20 rows: 0 new, 0 updated, 20 unchanged" in again.output
    assert {k: c.updated_at for k, c in stored(database).items()} == before

    rows[0][header.index("Contract")] = "Two year"
    changed = ingest(database_url, str(write_csv(path, header, rows)))
    assert "20 rows: 0 new, 1 updated, 19 unchanged" in changed.output
    after = stored(database)
    assert after["7590-VHVEG"].contract == "Two year"
    assert after["7590-VHVEG"].updated_at > before["7590-VHVEG"]
    assert all(after[k].updated_at == before[k] for k in before if k != "7590-VHVEG")


def test_a_file_without_a_customer_id_column_is_refused(database_url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "customers.csv", ["name", "tenure"], [["Ann", "3"]])
    result = ingest(database_url, str(path))
    assert result.exit_code == 2
    assert "customer_id" in result.output


def test_workers_opening_a_new_sqlite_database_together_all_start(tmp_path: Path) -> None:
    # Switching a new file to WAL needs it to itself, and SQLite refuses at once while another connection
    # migrates: before the retry, about one start in twenty of six workers failed with "database is locked".
    for attempt in range(30):
        path = tmp_path / f"clm-{attempt}.db"
        databases = [Database(f"sqlite:///{path}") for _ in range(6)]
        try:
            with ThreadPoolExecutor(6) as pool:
                list(pool.map(Database.upgrade, databases))  # none raises "database is locked"
            assert [opened.state()[0] for opened in databases] == ["ok"] * 6
        finally:
            for opened in databases:
                opened.dispose()
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_services_starting_together_migrate_one_after_the_other(empty_database_url: str) -> None:
    databases = [Database(empty_database_url) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(Database.upgrade, databases))
    for opened in databases:
        opened.dispose()
    with Database(empty_database_url).session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_clm_db_upgrade_migrates_and_the_jobs_refuse_a_database_it_has_not(
    empty_database_url: str, data_dir: Path
) -> None:
    refused = ingest(empty_database_url, str(data_dir / TELCO_FILE))
    assert refused.exit_code == 1
    assert "clm db upgrade" in refused.output
    env = {"CLM_DATABASE_URL": empty_database_url}
    upgraded = CliRunner().invoke(clm, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "schema at" in upgraded.output
    database = Database(empty_database_url)
    try:
        assert database.state()[0] == "ok"
    finally:
        database.dispose()
    again = CliRunner().invoke(clm, ["db", "upgrade"], env=env)
    assert again.exit_code == 0, again.output
