"""What a use case declares, and the checks every record gets.

A use case is one `UseCase` object: its route, its request and response schemas, how it turns a batch of
records into results, what the prediction log keeps and how shadow scoring compares two results. The steps
every scoring route shares (batch size, the line's scorer, the customer store, where the work runs, record
checks, the prediction log, shadow scoring, the response) are written once, in `pipeline.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from pydantic import BaseModel

from app import metrics
from app.errors import InvalidRecords
from app.prediction_log import Prediction
from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.shadow import Compare

Record = dict[str, Any]
Result = dict[str, Any]
# (scorer, records, the request body) -> one result per record, in request order
Score = Callable[[Scorer, list[Record], Any], list[Result]]
# (scorer, records, results in request order, the request body) -> the results as returned (ranked, cut)
Arrange = Callable[[Scorer, list[Record], list[Result], Any], list[Result]]
# (scorer, the request's records as validated, the request body) -> the records the model reads
Prepare = Callable[[Scorer, list[Any], Any], list[Record]]


@dataclass(frozen=True)
class UseCase:
    name: str  # the use case whose lines score: a spec's `use_case`
    path: str  # the route, e.g. /v1/churn/score
    operation_id: str
    summary: str
    description: str  # the route's OpenAPI description
    request: type[BaseModel]  # a ScoringRequest with the records under `records_field`
    response: type[BaseModel]
    records_field: str  # "customers", "leads", "listings"
    score: Score
    predictions: Callable[[Scorer, list[Result]], list[Prediction]]  # what the prediction log keeps
    compare: Compare | None = None  # how shadow scoring compares two results; None: no shadow scoring
    arrange: Arrange | None = None  # results returned in another order than the request's (a ranking)
    from_store: bool = False  # records may be stored customers given by id (app/scoring/customers/store.py)
    # The request types its records itself (value: id, summary or transactions), so the OpenAPI document keeps
    # that schema instead of the served version's record schema (app/openapi.py).
    typed_records: bool = False
    prepare: Prepare | None = None  # records made from what was sent (a value customer's transactions) first
    # The result's one score per record, for the records kept in full (drift, retraining); None: a use case
    # with several scores per record (products) keeps none.
    score_field: str | None = None


def check_records(
    scorer: Scorer,
    records: list[Record],
    path_prefix: str,
    strict: bool,
    sent: list[Record] | None = None,
) -> tuple[list[list[str]], list[list[str]]]:
    """What the model could not use in each record: the fields it does not know, and its own fields absent or
    null, per record in order. With `strict`, an unknown field is a 422 naming its path instead. Counted per
    model for /metrics. Unknown fields are those of the records as `sent` by the client when the store completed
    them (a stored customer's other columns are none of the caller's doing).

    Column by column, at C speed where the records are clean: on a 1,000-record batch this costs a fraction
    of the scoring (a per-record loop of set operations cost half as much as XGBoost itself)."""
    contract = scorer.bundle.contract
    known = contract.field_names
    unknown: list[list[str]] = [[] for _ in records]
    as_sent = records if sent is None else sent
    if not known.issuperset(set().union(*as_sent)):
        for row, record in enumerate(as_sent):
            if not record.keys() <= known:
                unknown[row] = sorted(record.keys() - known)
    if contract.derived:
        records = [contract.with_derived(record) for record in records]
    missing: list[list[str]] = [[] for _ in records]
    for feature in contract.features:
        column = list(map(dict.get, records, repeat(feature.name)))
        if None in column:
            for row, value in enumerate(column):
                if value is None:
                    missing[row].append(feature.name)
    unknown_count = sum(map(len, unknown))
    if strict and unknown_count:
        details = [
            {"path": f"{path_prefix}[{row}].{name}", "message": "not a field of this model (strict)"}
            for row, names in enumerate(unknown)
            for name in names
        ]
        raise InvalidRecords(f"{len(details)} field(s) are not fields of {scorer.name}", details)
    missing_count = sum(map(len, missing))
    version = str(scorer.version)
    if unknown_count:
        metrics.RECORD_FIELDS.labels(scorer.name, version, "unknown").inc(unknown_count)
    if missing_count:
        metrics.RECORD_FIELDS.labels(scorer.name, version, "missing").inc(missing_count)
    return unknown, missing
