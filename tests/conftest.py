"""A real MLflow registry in a temporary directory, real XGBoost models trained on the real data, the real app.

Models are trained once per session with few rounds (small, fast, still real); tests build their own app.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from app.bulk.record_model import RecordFlavour
from app.main import create_app
from app.settings import Settings
from model_registry.bundle import ModelBundle
from model_registry.registry import ModelRegistry
from training.publish import publish, training_run
from training.spec import ModelSpec, find_spec

# Absolute: the Makefile exports a relative CLM_DATA_DIR, and some tests change directory (the commands make ./var).
DATA_DIR = Path(
    os.environ.get("CLM_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data")
).resolve()
SCORE_KEY, ADMIN_KEY, SCORE_ONLY_KEY = "test-admin", "test-admin", "test-score"
API_KEYS = {
    "test-admin": ["score", "outcomes", "admin"],
    "test-score": ["score"],
    "test-outcomes": ["outcomes"],
}
OUTCOMES_ONLY_KEY = "test-outcomes"


def small(spec: ModelSpec) -> ModelSpec:
    """The spec with a short fit: real trees on the real data, in seconds."""
    return spec.model_copy(
        update={"training": spec.training.model_copy(update={"max_rounds": 60, "early_stopping_rounds": 20})}
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "telco_churn").is_dir():
        pytest.fail(f"the shared data is not at {DATA_DIR}; set CLM_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    root = tmp_path_factory.mktemp("registry")
    # Every version with the record model as its pyfunc flavour, as `clm train` registers them.
    return ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", str(root / "artifacts"), RecordFlavour())


@pytest.fixture(scope="session")
def churn_version(registry: ModelRegistry, data_dir: Path) -> int:
    from training.binary import train_binary

    ref, _ = train_binary(small(find_spec("churn")), data_dir, registry)
    return ref.version


@pytest.fixture(scope="session")
def products_version(registry: ModelRegistry, data_dir: Path) -> int:
    from training.products import train_products

    ref, _ = train_products(small(find_spec("products")), data_dir, registry)
    return ref.version


@pytest.fixture(scope="session")
def card_trained(registry: ModelRegistry, data_dir: Path) -> tuple[int, float]:
    """The credit-card churn line (short fit): its version and the holdout ROC AUC training measured."""
    from training.binary import train_binary

    ref, figures = train_binary(small(find_spec("churn", "card")), data_dir, registry)
    return ref.version, figures["roc_auc"]


@pytest.fixture(scope="session")
def value_trained(registry: ModelRegistry, data_dir: Path) -> tuple[int, dict[str, float]]:
    """The retail value line (BG/NBD and Gamma-Gamma: seconds, no short fit needed) and its holdout figures."""
    from training.value import train_value

    ref, figures = train_value(find_spec("value", "retail"), data_dir, registry)
    return ref.version, figures


def make_settings(registry: ModelRegistry, models: list[str], **overrides: object) -> Settings:
    """The app's settings for a test. The background profile refresher is off unless a test turns it on
    (tests/test_profile_refresh.py): tests that count where profiles got their scores, or what
    `clm score customers` scored, would otherwise race it, and every app with stored customers would score
    all of them in the background."""
    overrides.setdefault("profile_refresh", False)
    return Settings(
        mlflow_tracking_uri=registry.tracking_uri,
        artifact_root=Path(registry.artifact_root or "."),
        api_keys=API_KEYS,
        models=models,
        **overrides,
    )


@pytest.fixture(scope="session")
def client(registry: ModelRegistry, churn_version: int, products_version: int) -> Iterator[TestClient]:
    """The app serving every model trained for the session."""
    with TestClient(create_app(make_settings(registry, ["clm-churn", "clm-products"]))) as test_client:
        test_client.headers["X-API-Key"] = SCORE_KEY
        yield test_client


@pytest.fixture(scope="session")
def inbound_version(registry: ModelRegistry, data_dir: Path) -> int:
    from training.binary import train_binary

    ref, _ = train_binary(small(find_spec("leads", "inbound")), data_dir, registry)
    return ref.version


@pytest.fixture(scope="session")
def outbound_version(registry: ModelRegistry, data_dir: Path) -> int:
    from training.binary import train_binary

    ref, _ = train_binary(small(find_spec("leads", "outbound")), data_dir, registry)
    return ref.version


@pytest.fixture(scope="session")
def leads_client(
    registry: ModelRegistry, inbound_version: int, outbound_version: int
) -> Iterator[TestClient]:
    """The app serving both lead lines."""
    settings = make_settings(registry, ["clm-leads-inbound", "clm-leads-outbound"])
    with TestClient(create_app(settings)) as test_client:
        test_client.headers["X-API-Key"] = SCORE_KEY
        yield test_client


@pytest.fixture(scope="session")
def diagnosis_trained(registry: ModelRegistry, data_dir: Path) -> tuple[int, dict[str, float]]:
    """A real effect model on the real listings (short fit): its version and the holdout figures it logged."""
    from training.diagnosis import train_diagnosis

    ref, figures = train_diagnosis(small(find_spec("diagnosis")), data_dir, registry)
    return ref.version, figures


@pytest.fixture(scope="session")
def diagnosis_client(
    registry: ModelRegistry, diagnosis_trained: tuple[int, dict[str, float]]
) -> Iterator[TestClient]:
    """The app serving the effect diagnosis model."""
    with TestClient(create_app(make_settings(registry, ["clm-diagnosis"]))) as test_client:
        test_client.headers["X-API-Key"] = SCORE_KEY
        yield test_client


def copy_registry(registry: ModelRegistry, directory: Path) -> ModelRegistry:
    """A registry of its own holding what a SQLite registry holds now; the artifacts stay where they are."""
    target = directory / "mlflow.db"
    with (
        sqlite3.connect(registry.tracking_uri.removeprefix("sqlite:///")) as source,
        sqlite3.connect(target) as copy,
    ):
        source.backup(copy)
    return ModelRegistry(f"sqlite:///{target}", registry.artifact_root)


def publish_copy(registry: ModelRegistry, bundle: ModelBundle, spec: ModelSpec | None = None) -> int:
    """Register a bundle as a new version (of churn by default) through the real publish path, untrained."""
    spec = spec or find_spec("churn")
    with training_run(registry, spec):
        return publish(registry, spec, bundle).version


@dataclass(frozen=True)
class ChurnLineup:
    """A registry holding churn versions for the promotion tests; each test works on its own copy of it."""

    registry: ModelRegistry  # champion: good, no challenger
    good: int  # the session's churn model
    weak: int  # trained for a few rounds: lower ROC AUC, higher log loss
    bad_check: int  # the good model with a stored example it does not reproduce
    corrupt: int  # the good model with its booster file overwritten by garbage


@pytest.fixture(scope="session")
def churn_lineup(
    registry: ModelRegistry, churn_version: int, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> ChurnLineup:
    from training.binary import train_binary

    root = tmp_path_factory.mktemp("lineup")
    lineup = ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", str(root / "artifacts"))
    good = registry.load("clm-churn", churn_version)
    good_version = publish_copy(lineup, good)
    spec = find_spec("churn")
    few_rounds = spec.training.model_copy(update={"max_rounds": 4, "early_stopping_rounds": 2})
    weak_spec = spec.model_copy(update={"training": few_rounds})
    weak_ref, _ = train_binary(weak_spec, data_dir, lineup)
    check = good.metadata["check"]
    wrong = {key: [p + 0.2 for p in values] for key, values in check["probabilities"].items()}
    wrong_check = {**good.metadata, "check": {**check, "probabilities": wrong}}
    bad_check = publish_copy(lineup, replace(good, metadata=wrong_check))
    corrupt = publish_copy(lineup, good)
    model_id = lineup.client.get_model_version("clm-churn", str(corrupt)).source.removeprefix("models:/")
    location = lineup.client.get_logged_model(model_id).artifact_location
    (Path(location.removeprefix("file://")) / "boosters" / "model.ubj").write_bytes(b"not a booster")
    return ChurnLineup(
        registry=lineup,
        good=good_version,
        weak=weak_ref.version,
        bad_check=bad_check,
        corrupt=corrupt,
    )


@pytest.fixture
def lineup_registry(churn_lineup: ChurnLineup, tmp_path: Path) -> ModelRegistry:
    return copy_registry(churn_lineup.registry, tmp_path)


# --- The service's database (customer store, prediction log, outcomes) -----------------------------------

POSTGRES_URL = os.environ.get("CLM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TELCO_FILE = "telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", autouse=True)
def _apps_keep_their_database_in_a_temporary_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Apps built by tests without a database_url use a throwaway SQLite file (migrated, as `make run` does
    before serving), never ./var/clm.db."""
    url = f"sqlite:///{tmp_path_factory.mktemp('default-db') / 'clm.db'}"
    migrate(url)
    os.environ["CLM_DATABASE_URL"] = url
    yield
    os.environ.pop("CLM_DATABASE_URL", None)


def migrate(url: str) -> None:
    """`clm db upgrade`: the service never migrates, so a test's database is migrated before its app starts."""
    from app.db import Database

    database = Database(url)
    try:
        database.upgrade()
    finally:
        database.dispose()


class Databases:
    """Databases on demand: a new SQLite file, or a new PostgreSQL schema (dropped at the end), migrated to the
    newest schema unless asked for an empty one."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.schemas: list[str] = []
        self._admin: Engine | None = None

    def new(self, backend: str, *, migrated: bool = True) -> str:
        url = self._new(backend)
        if migrated:
            migrate(url)
        return url

    def _new(self, backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.tmp_path_factory.mktemp('sqlite') / 'clm.db'}"
        schema = f"clm_test_{uuid.uuid4().hex[:12]}"
        try:
            with self.admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        except OperationalError as exc:
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (set CLM_TEST_POSTGRES_URL): {exc}")
        self.schemas.append(schema)
        return in_schema(POSTGRES_URL, schema)

    @property
    def admin(self) -> Engine:
        if self._admin is None:
            self._admin = create_engine(POSTGRES_URL)
        return self._admin

    def drop_all(self) -> None:
        if self._admin is None:
            return
        with self._admin.begin() as connection:
            for schema in self.schemas:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self._admin.dispose()


def in_schema(url: str, schema: str) -> str:
    """The URL with every connection's search_path set to `schema` (tables and Alembic's version table there)."""
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    made = Databases(tmp_path_factory)
    yield made
    made.drop_all()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each database test runs on SQLite and on PostgreSQL; PostgreSQL unreachable is a failure, not a skip."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, databases: Databases) -> str:
    """A new database of the test's backend, migrated, with no rows."""
    return databases.new(backend)


@pytest.fixture
def empty_database_url(backend: str, databases: Databases) -> str:
    """A new database of the test's backend without any table (for the migrations' own tests)."""
    return databases.new(backend, migrated=False)


def load_demo_customers(database_url: str, data_dir: Path) -> None:
    """Migrate the database and load the 7,043 Telco customers, as `make run` does."""
    from app.db import Database
    from app.ingest import ingest_customers

    database = Database(database_url)
    try:
        database.upgrade()
        ingest_customers(database, data_dir / TELCO_FILE, batch_size=1000)
    finally:
        database.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def store_client(
    request: pytest.FixtureRequest,
    databases: Databases,
    registry: ModelRegistry,
    churn_version: int,
    products_version: int,
    data_dir: Path,
) -> Iterator[TestClient]:
    """The churn and product models on each backend, with the demo customers stored (shared: read, don't count)."""
    url = databases.new(str(request.param))
    load_demo_customers(url, data_dir)
    settings = make_settings(
        registry, ["clm-churn", "clm-products"], database_url=url, prediction_log_interval=0.05
    )
    with TestClient(create_app(settings)) as test_client:
        test_client.headers["X-API-Key"] = SCORE_KEY
        yield test_client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many requests Schemathesis sent per backend (tests/test_openapi_fuzz.py), when it ran."""
    fuzz = sys.modules.get("tests.test_openapi_fuzz")
    sent = getattr(fuzz, "SENT", None)
    if not sent:
        return
    terminalreporter.section("schemathesis")
    for backend, counts in sent.items():
        terminalreporter.write_line(
            f"{backend}: {sum(counts.values()):,} requests over {len(counts)} operations "
            f"(fewest {min(counts.values(), default=0)} on one operation); phases: "
            + ", ".join(getattr(fuzz, "PHASES", {}).get(backend, []))
        )
