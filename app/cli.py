"""`clm`: the training commands (training/cli.py) plus `clm db`, `clm ingest` and `clm score`, which need the
service's database.

Training never imports app/, so the full CLI is composed here; the console script points at `clm`.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.bulk.defaults import TOP_N
from app.bulk.spark import spark_command
from app.settings import Settings
from training.cli import TrainingSettings, register_with
from training.cli import app as clm

if TYPE_CHECKING:
    from collections.abc import Callable

    from app.bulk.files import ChunkDone
    from app.db import Database
    from app.ingest import BatchDone, IngestReport
    from app.prescore import BatchScored
    from model_registry.registry import PyfuncFlavour
    from training.spec import ModelSpec


def _record_flavour() -> PyfuncFlavour:
    # Heavy modules (MLflow, XGBoost, pandas) are imported in the commands using them: `clm --help` starts in <1 s.
    from app.bulk.record_model import RecordFlavour

    return RecordFlavour()


# Every version `clm train` and `clm retrain` register carries the record model as its pyfunc flavour (made when
# a command opens the registry).
register_with(_record_flavour)
# The use cases whose lines keep customers in the store (`clm ingest customers --line`).
STORED_USE_CASES = ("churn", "value")
db_app = typer.Typer(help="The service's database (CLM_DATABASE_URL).", no_args_is_help=True)
clm.add_typer(db_app, name="db")
ingest_app = typer.Typer(
    help="Load records into the service's database (CLM_DATABASE_URL).", no_args_is_help=True
)
clm.add_typer(ingest_app, name="ingest")
score_app = typer.Typer(
    help="Score in bulk: the stored customers with the served versions, or a file or table with any version.",
    no_args_is_help=True,
)
clm.add_typer(score_app, name="score")
drift_app = typer.Typer(
    help="Drift of the served versions: their sampled records against their reference profiles.",
    no_args_is_help=True,
)
clm.add_typer(drift_app, name="drift")
log = logging.getLogger("clm.ingest")
score_log = logging.getLogger("clm.score")

SHOWN_REJECTS = 20


@db_app.command("upgrade")
def db_upgrade_command() -> None:
    """Bring the schema to the newest migration: a step of its own, before the service starts (`make run` runs
    it; in a container, run it once per release). A no-op when the schema is current; several at once take turns.
    """
    from sqlalchemy.exc import DBAPIError

    database = _database()
    try:
        database.upgrade()
        _, message = database.state()
    except DBAPIError as exc:
        typer.echo(f"cannot upgrade {database.url.render_as_string()}: {exc.orig or exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    typer.echo(f"database {database.url.render_as_string()}: {message}")


def _database() -> Database:
    from app.db import Database

    settings = Settings()
    return Database(settings.database_url, connect_timeout=settings.database_connect_timeout)


def _migrated_database() -> Database:
    """The database, when it answers and its schema is current; else the command stops saying what to do."""
    database = _database()
    state, message = database.state()
    if state != "ok":
        database.dispose()
        typer.echo(f"database {database.url.render_as_string()} {state}: {message}", err=True)
        raise typer.Exit(1)
    return database


@drift_app.command("report")
def drift_report_command(
    name: Annotated[str, typer.Argument(help="The registered model, e.g. clm-churn.", show_default=False)],
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Start of the window (UTC unless it says otherwise); default: CLM_DRIFT_WINDOW_HOURS ago.",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="The HTML file; default: drift-NAME.html")] = None,
) -> None:
    """Write a self-contained HTML report of the served version's drift (CLM_ALIAS): every field's PSI, the
    score's, and a plot per field of the reference against the window's sampled records."""
    from app.drift import drift_of
    from app.drift_report import render as render_drift_report
    from app.errors import NotFound
    from model_registry.registry import ModelRegistry

    settings = Settings()
    registry = ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))
    served = registry.resolve(name, settings.alias)
    if served is None:
        typer.echo(f"error: {name} has no {settings.alias} version in the registry", err=True)
        raise typer.Exit(2)
    bundle = registry.load(name, served.version)
    until = datetime.now(UTC)
    start = until - timedelta(hours=settings.drift_window_hours) if since is None else since
    database = _migrated_database()
    try:
        figures = drift_of(
            database,
            name,
            served.version,
            bundle,
            start if start.tzinfo else start.replace(tzinfo=UTC),
            until,
            watch=settings.drift_psi_watch,
            act=settings.drift_psi_act,
        )
    except NotFound as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    path = output or Path(f"drift-{name}.html")
    path.write_text(render_drift_report(figures))
    drifting = [f["field"] for f in figures["fields"] if f["status"] in ("watch", "act")]
    typer.echo(
        f"{name} version {served.version}: {figures['records']:,} sampled records; score PSI "
        f"{figures['score']['psi'] if figures['score']['psi'] is None else round(figures['score']['psi'], 4)}; "
        f"drifting: {', '.join(drifting) or 'none'}; report written to {path}"
    )


@ingest_app.command("customers")
def ingest_customers_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="A Telco-format customer CSV; with --line, a CSV or Parquet file in the line's own format.",
        ),
    ],
    line: Annotated[
        str | None,
        typer.Option(
            help="The churn or value line the customers belong to (its spec says the format); default: Telco."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Rows per transaction.")] = 500,
    rejects: Annotated[
        Path | None, typer.Option(help="Write every rejected row (line, customer_id, reasons) to this CSV.")
    ] = None,
) -> None:
    """Load or update customers (upsert by customer_id); bad rows are rejected with reasons, the rest stored.

    Exits 1 when any row was rejected (the good rows are stored all the same).
    """
    from app.ingest import ingest_customers
    from training.data import DataError

    settings = Settings()
    load = partial(ingest_customers, path=file) if line is None else _line_loader(settings, line, file)
    database = _migrated_database()
    try:
        started = time.perf_counter()
        try:
            report = load(database, batch_size=batch_size, progress=_show_progress)
        except (ValueError, DataError) as exc:
            raise typer.BadParameter(str(exc), param_hint="FILE") from exc
    finally:
        database.dispose()
    _summarise(file, report, time.perf_counter() - started, rejects)
    if report.rejected:
        raise typer.Exit(1)


def _line_loader(settings: Settings, line: str, file: Path) -> Callable[..., IngestReport]:
    """Loading a line's customers: the file read in the format of the line's spec (separator, missing values,
    ID column), each row checked against the contract of the version the service serves for the line."""
    from app.ingest import ingest_line_customers
    from model_registry.contract import api_name
    from model_registry.registry import ModelRegistry
    from training.data import read_source
    from training.spec import ROW_NUMBER

    spec = _stored_line_spec(line)
    registry = ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))
    served = registry.resolve(spec.registered_model, settings.alias)
    if served is None:
        raise typer.BadParameter(
            f"{spec.registered_model} has no {settings.alias} version: train it first (clm train --spec)",
            param_hint="--line",
        )
    contract = registry.load(spec.registered_model, served.version).contract
    source = spec.data.model_copy(update={"file": str(file.resolve()), "sql": None, "url_env": None})
    frame = read_source(source, Path("."))
    if spec.data.id_column == ROW_NUMBER:
        frame[ROW_NUMBER] = range(len(frame))
    frame = frame.rename(columns={spec.data.id_column: contract.id_field})
    frame.columns = [api_name(str(column)) for column in frame.columns]
    return partial(ingest_line_customers, line=line, frame=frame, contract=contract)


def _stored_line_spec(line: str) -> ModelSpec:
    """The spec of a line whose customers the store keeps: a churn line, or a value line (its customers'
    transaction summaries, `clm value summaries`)."""
    from training.spec import all_specs

    specs = [
        spec
        for spec in all_specs(TrainingSettings().specs_dir)
        if spec.line == line and spec.use_case in STORED_USE_CASES
    ]
    if len(specs) != 1:
        lines = sorted(
            {
                s.line
                for s in all_specs(TrainingSettings().specs_dir)
                if s.use_case in STORED_USE_CASES and s.line
            }
        )
        found = "no" if not specs else "more than one"
        raise typer.BadParameter(
            f"{found} churn or value line {line!r}; lines: {', '.join(map(str, lines))}", param_hint="--line"
        )
    return specs[0]


@score_app.command("customers")
def score_customers_command(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Customers per batch.")] = 1000,
) -> None:
    """Store the profile scores of every customer whose stored scores are not current (new or changed record,
    another version served): GET /v1/customers/{id}/profile then reads them instead of scoring.

    The running service keeps them current itself (after a promotion, a rollback or an ingest; see
    CLM_PROFILE_REFRESH): this fills them on every core, e.g. before the service starts. Customers not scored are
    still scored when viewed. A re-run scores only what changed.
    """
    from app.errors import ModelNotLoaded
    from app.prescore import prescore_profiles
    from app.scoring.customers.profile import products_scorer_of
    from app.scoring.runtime.loaded import LoadedModels
    from app.scoring.use_cases.churn import CHURN_MODEL
    from app.scoring.use_cases.products import PRODUCTS_MODEL
    from model_registry.registry import ModelRegistry

    settings = Settings()
    if CHURN_MODEL not in settings.models:
        raise typer.BadParameter(f"the profile needs {CHURN_MODEL}, and CLM_MODELS does not serve it")
    served = [name for name in (CHURN_MODEL, PRODUCTS_MODEL) if name in settings.models]
    registry = ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))
    models = LoadedModels(
        registry,
        served,
        settings.alias,
        threads=os.cpu_count() or 1,
        exact_contributions=settings.exact_contributions,
        load_challengers=False,
    )
    models.load_all()
    try:
        churn_scorer = models.get(CHURN_MODEL)
    except ModelNotLoaded as exc:
        typer.echo(f"cannot score: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    products_scorer, no_offers_reason = products_scorer_of(models, None)
    if products_scorer is None:
        typer.echo(f"scoring without offers: {no_offers_reason}", err=True)
    database = _migrated_database()
    try:
        started = time.perf_counter()
        scored = prescore_profiles(database, churn_scorer, products_scorer, batch_size, _show_scored)
    finally:
        database.dispose()
    versions = f"{CHURN_MODEL} version {churn_scorer.version}"
    if products_scorer is not None:
        versions += f", {PRODUCTS_MODEL} version {products_scorer.version}"
    typer.echo(
        f"profile scores: {scored} customers scored by {versions} ({time.perf_counter() - started:.1f} s)"
    )


def _show_scored(batch: BatchScored) -> None:
    score_log.info("batch %d: %d scored (%d of %d)", batch.number, batch.scored, batch.done, batch.total)


def _show_progress(batch: BatchDone) -> None:
    of = f"/{batch.batches}" if batch.batches else ""
    counts = batch.counts
    log.info(
        "batch %d%s (lines %d-%d): %d new, %d updated, %d unchanged, %d rejected",
        batch.number,
        of,
        batch.first_line,
        batch.last_line,
        counts.inserted,
        counts.updated,
        counts.unchanged,
        batch.rejected,
    )


def _summarise(file: Path, report: IngestReport, seconds: float, rejects: Path | None) -> None:
    if report.ignored_columns:
        typer.echo(f"ignored columns (not stored fields): {', '.join(report.ignored_columns)}", err=True)
    if report.missing_columns:
        typer.echo(
            f"columns not in the file (stored as missing): {', '.join(report.missing_columns)}", err=True
        )
    for rejected in report.rejected[:SHOWN_REJECTS]:
        typer.echo(
            f"rejected line {rejected.line} ({rejected.customer_id}): {'; '.join(rejected.reasons)}", err=True
        )
    if len(report.rejected) > SHOWN_REJECTS and rejects is None:
        typer.echo(
            f"... and {len(report.rejected) - SHOWN_REJECTS} more: pass --rejects FILE for all", err=True
        )
    if rejects is not None:
        with rejects.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "customer_id", "reasons"])
            writer.writerows([r.line, r.customer_id, "; ".join(r.reasons)] for r in report.rejected)
    repeated = f", {report.repeated} repeated ids (the later row kept)" if report.repeated else ""
    typer.echo(
        f"{file.name}: {report.rows} rows: {report.inserted} new, {report.updated} updated, {report.unchanged} "
        f"unchanged, {len(report.rejected)} rejected{repeated} ({seconds:.1f} s)"
    )


@score_app.command("file")
def score_file_command(
    source: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="Records to score: CSV, or Parquet (.parquet, .pq), with the API's field names (or the data "
            "set's column names, which map to them).",
        ),
    ],
    out: Annotated[
        Path, typer.Argument(dir_okay=False, help="Where the scores go: Parquet (.parquet, .pq) or CSV.")
    ],
    model: Annotated[
        str,
        typer.Option(help="NAME, NAME@ALIAS or NAME/VERSION; NAME alone is the served alias (CLM_ALIAS)."),
    ],
    explain: Annotated[bool, typer.Option(help="Add top_factors (reasons) to every row.")] = False,
    top_n: Annotated[int, typer.Option(min=1, help="Products: offers listed in `recommendations`.")] = TOP_N,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="The refused rows with their reasons (CSV); default: next to OUT, OUT.rejects.csv."
        ),
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows read, scored and written at a time.")] = 10_000,
    separator: Annotated[str, typer.Option(help="The CSV input's field separator.")] = ",",
) -> None:
    """Score a file of records with one registered version: one output row per good input row, in order, with
    the ID, the API's figures, the model and its version; memory holds one chunk whatever the file's length.

    A row the API would refuse goes to the rejects file with its reasons and the rest are scored; exits 1 when
    any row was refused.
    """
    import pyarrow as pa

    from app.bulk.figures import Options
    from app.bulk.files import default_rejects, score_file
    from app.bulk.model_ref import ModelRef, UnknownVersion
    from app.bulk.record_model import scorer_of
    from model_registry.registry import ModelRegistry

    settings = Settings()
    try:
        ref = ModelRef.parse(model, settings.alias)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    registry = ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))
    try:
        version = ref.resolve(registry)
    except UnknownVersion as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    bundle = registry.load(ref.name, version, nthread=os.cpu_count() or 1)
    scorer = scorer_of(
        bundle, ref.name, version, alias=ref.alias or "", exact_contributions=settings.exact_contributions
    )
    scorer.check()
    rejects = rejects or default_rejects(out)
    rejects.unlink(missing_ok=True)  # only this run's refusals
    score_log.info("scoring %s with %s version %d into %s", source, ref.name, version, out)
    try:
        report = score_file(
            scorer,
            source,
            out,
            rejects,
            Options(explain=explain, top_n=top_n),
            chunk_rows=chunk_rows,
            separator=separator,
            progress=_show_chunk,
        )
    except (
        OSError,
        ValueError,
        pa.ArrowException,
    ) as exc:  # unreadable input: not CSV or Parquet, bad encoding
        raise typer.BadParameter(f"cannot read {source}: {exc}", param_hint="SOURCE") from exc
    for reason in report.reasons:
        typer.echo(f"refused {reason}", err=True)
    refused = f", {report.rejected} refused (in {rejects})" if report.rejected else ", none refused"
    typer.echo(
        f"{source.name}: {report.rows} rows, {report.scored} scored{refused}, by {ref.name} version {version} "
        f"in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s) -> {out}"
    )
    if report.rejected:
        raise typer.Exit(1)


score_app.command("spark")(spark_command)


def _show_chunk(chunk: ChunkDone) -> None:
    score_log.info(
        "rows %d-%d: %d scored, %d refused (%s rows/s)",
        chunk.first_row,
        chunk.first_row + chunk.rows - 1,
        chunk.rows - chunk.rejected,
        chunk.rejected,
        f"{chunk.rows_per_second:,.0f}",
    )


if __name__ == "__main__":
    clm()
