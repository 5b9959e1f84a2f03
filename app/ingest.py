"""Loading customer records into the store, validated row by row, upserted batch by batch: the default churn
line's Telco-format CSV into its typed table, an added line's rows checked against its model's contract.

Each batch is one transaction: a batch is stored whole or not at all, and batches already committed stay when
a later one fails (a re-run is cheap: unchanged rows are not rewritten). A row that fails validation is
rejected with its reasons and never reaches the database; the other rows of its batch are stored.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from app.db import Database
from app.models.customer import RECORD_FIELDS
from app.repositories import customers as customer_repo
from app.repositories import line_customers as line_customer_repo
from app.scoring.runtime.scorer import id_problem
from model_registry.contract import FeatureContract, api_name
from training.data import frame_records, numbers_read


def _blank_is_missing(value: Any) -> Any:
    # The Telco file leaves total_charges as " " for customers of tenure 0: a blank is a missing value.
    return None if isinstance(value, str) and not value.strip() else value


Category = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None,
    BeforeValidator(_blank_is_missing),
]
Flag = Annotated[Annotated[int, Field(ge=0, le=1)] | None, BeforeValidator(_blank_is_missing)]
Months = Annotated[Annotated[int, Field(ge=0, le=1200)] | None, BeforeValidator(_blank_is_missing)]
Money = Annotated[
    Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None, BeforeValidator(_blank_is_missing)
]


class CustomerRow(BaseModel):
    """One file row: the Telco columns under their API names; unknown columns are reported and ignored."""

    model_config = ConfigDict(extra="ignore")

    customer_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    gender: Category = None
    senior_citizen: Flag = None
    partner: Category = None
    dependents: Category = None
    tenure: Months = None
    phone_service: Category = None
    multiple_lines: Category = None
    internet_service: Category = None
    online_security: Category = None
    online_backup: Category = None
    device_protection: Category = None
    tech_support: Category = None
    streaming_tv: Category = None
    streaming_movies: Category = None
    contract: Category = None
    paperless_billing: Category = None
    payment_method: Category = None
    monthly_charges: Money = None
    total_charges: Money = None


@dataclass(frozen=True)
class Rejected:
    line: int
    customer_id: str | None
    reasons: list[str]


@dataclass
class IngestReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    repeated: int = 0  # rows whose id came again later in the same batch: the later row was stored
    rejected: list[Rejected] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BatchDone:
    number: int
    batches: int | None
    first_line: int
    last_line: int
    counts: customer_repo.UpsertCounts
    rejected: int


def ingest_customers(
    database: Database, path: Path, batch_size: int, progress: Callable[[BatchDone], None] = lambda _: None
) -> IngestReport:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        report = _check_header(reader.fieldnames)
        batches = math.ceil(_count_lines(path) / batch_size) or None
        lines = _numbered_rows(reader)
        for number in itertools.count(1):
            chunk = list(itertools.islice(lines, batch_size))
            if not chunk:
                return report
            _ingest_batch(database, chunk, report, number, batches, progress)
    return report


def _check_header(columns: Sequence[str] | None) -> IngestReport:
    names = [api_name(c) for c in columns or []]
    if "customer_id" not in names:
        raise ValueError(f"no customerID / customer_id column; the header is {columns}")
    return IngestReport(
        ignored_columns=[c for c, n in zip(columns or [], names, strict=True) if n not in RECORD_FIELDS],
        missing_columns=[n for n in RECORD_FIELDS if n not in names],
    )


def _numbered_rows(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """(line, record under API names, what is wrong with the row's shape or None)."""
    names = {column: api_name(column) for column in reader.fieldnames or []}
    for row in reader:
        record = {names[k]: v for k, v in row.items() if k in names}
        problem = None
        if None in row:  # DictReader files surplus values under the key None
            problem = f"row: {len(names) + len(row[None])} values for {len(names)} columns"
        elif any(v is None for v in row.values()):  # and fills missing trailing values with None
            problem = f"row: fewer values than the {len(names)} columns"
        yield reader.line_num, record, problem


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def _ingest_batch(
    database: Database,
    chunk: list[tuple[int, dict[str, Any], str | None]],
    report: IngestReport,
    number: int,
    batches: int | None,
    progress: Callable[[BatchDone], None],
) -> None:
    valid: dict[str, dict[str, Any]] = {}
    rejected_before = len(report.rejected)
    for line, raw, problem in chunk:
        if problem is not None:
            report.rejected.append(Rejected(line, raw.get("customer_id") or None, [problem]))
            continue
        try:
            row = CustomerRow.model_validate(raw).model_dump()
        except ValidationError as exc:
            report.rejected.append(Rejected(line, raw.get("customer_id") or None, _reasons(exc, raw)))
            continue
        if row["customer_id"] in valid:
            report.repeated += 1
            del valid[row["customer_id"]]  # re-inserted below, so the later row keeps its place
        valid[row["customer_id"]] = row
    with database.session() as session:
        counts = customer_repo.upsert_many(session, list(valid.values()))
    report.rows += len(chunk)
    report.inserted += counts.inserted
    report.updated += counts.updated
    report.unchanged += counts.unchanged
    progress(
        BatchDone(number, batches, chunk[0][0], chunk[-1][0], counts, len(report.rejected) - rejected_before)
    )


def _reasons(exc: ValidationError, raw: dict[str, Any]) -> list[str]:
    reasons = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "row"
        reasons.append(f"{name}={raw.get(name)!r}: {error['msg']}")
    return reasons


def ingest_line_customers(
    database: Database,
    line: str,
    frame: pd.DataFrame,
    contract: FeatureContract,
    batch_size: int,
    progress: Callable[[BatchDone], None] = lambda _: None,
) -> IngestReport:
    """Load the customers of an added line: the rows of `frame` (API column names, the line's ID under its
    `id_field`), each keeping the fields the line's model reads, checked against its contract; a row whose
    fields the model could not read (a word where a number belongs) is rejected with its reasons."""
    id_field = contract.id_field
    if id_field not in frame.columns:
        raise ValueError(f"no {id_field} column; the columns are {list(frame.columns)}")
    kept = [name for name in frame.columns if name in contract.field_names]
    report = IngestReport(
        ignored_columns=[name for name in frame.columns if name not in contract.field_names],
        missing_columns=[f.name for f in contract.features if f.name not in frame.columns],
    )
    records = frame_records(numbers_read(frame[kept], contract.number_fields))
    batches = math.ceil(len(records) / batch_size) or None
    for number, start in enumerate(range(0, len(records), batch_size), start=1):
        chunk = records[start : start + batch_size]
        # Line numbers as in the file: its header is line 1.
        _ingest_line_batch(database, line, contract, chunk, start + 2, report, number, batches, progress)
    return report


def _ingest_line_batch(
    database: Database,
    line: str,
    contract: FeatureContract,
    chunk: list[dict[str, Any]],
    first_line: int,
    report: IngestReport,
    number: int,
    batches: int | None,
    progress: Callable[[BatchDone], None],
) -> None:
    _, errors = contract.encode(chunk, "rows")
    reasons: dict[int, list[str]] = {}
    for error in errors:
        position, name = error.path.removeprefix("rows[").split("].", 1)
        bad = int(position)
        reasons.setdefault(bad, []).append(f"{name}={chunk[bad].get(name)!r}: {error.message}")
    valid: dict[str, dict[str, Any]] = {}
    rejected_before = len(report.rejected)
    for row, record in enumerate(chunk):
        customer_id = record.get(contract.id_field)
        problem = "is missing" if customer_id is None else id_problem(customer_id)
        if problem is not None:
            reasons.setdefault(row, []).append(f"{contract.id_field}={customer_id!r}: {problem}")
        if row in reasons:
            shown = None if customer_id is None else str(customer_id)
            report.rejected.append(Rejected(first_line + row, shown, reasons[row]))
            continue
        record = {**record, contract.id_field: str(customer_id)}
        if record[contract.id_field] in valid:
            report.repeated += 1
            del valid[record[contract.id_field]]  # re-inserted below, so the later row keeps its place
        valid[record[contract.id_field]] = record
    with database.session() as session:
        counts = line_customer_repo.upsert_many(session, line, list(valid.values()))
    report.rows += len(chunk)
    report.inserted += counts.inserted
    report.updated += counts.updated
    report.unchanged += counts.unchanged
    last_line = first_line + len(chunk) - 1
    progress(
        BatchDone(number, batches, first_line, last_line, counts, len(report.rejected) - rejected_before)
    )
