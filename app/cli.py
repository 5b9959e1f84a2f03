"""`clm`: the training commands (training/cli.py) plus `clm ingest`, which needs the service's database.

Training never imports app/, so the full CLI is composed here; the console script points at `clm`.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from app.db import Database
from app.ingest import BatchDone, IngestReport, ingest_customers
from app.settings import Settings
from training.cli import app as clm

ingest_app = typer.Typer(
    help="Load records into the service's database (CLM_DATABASE_URL).", no_args_is_help=True
)
clm.add_typer(ingest_app, name="ingest")
log = logging.getLogger("clm.ingest")

SHOWN_REJECTS = 20


@ingest_app.command("customers")
def ingest_customers_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A Telco-format customer CSV.")],
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Rows per transaction.")] = 500,
    rejects: Annotated[
        Path | None, typer.Option(help="Write every rejected row (line, customer_id, reasons) to this CSV.")
    ] = None,
) -> None:
    """Load or update customers (upsert by customer_id); bad rows are rejected with reasons, the rest stored.

    Exits 1 when any row was rejected (the good rows are stored all the same).
    """
    database = Database(Settings().database_url)
    try:
        database.upgrade()
        started = time.perf_counter()
        try:
            report = ingest_customers(database, file, batch_size, _show_progress)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="FILE") from exc
    finally:
        database.dispose()
    _summarise(file, report, time.perf_counter() - started, rejects)
    if report.rejected:
        raise typer.Exit(1)


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


if __name__ == "__main__":
    clm()
