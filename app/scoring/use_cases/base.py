"""What a use case declares, and the checks every record gets.

A use case is one `UseCase` object: its route, its request and response schemas, how it turns a batch of
records into results, what the prediction log keeps and how shadow scoring compares two results. The steps
every scoring route shares (batch size, the line's scorer, the customer store, where the work runs, record
checks, the prediction log, shadow scoring, the response) are written once, in `pipeline.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app import metrics
from app.errors import InvalidRecords
from app.prediction_log import Prediction
from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.shadow import Compare
from model_registry.contract import FeatureContract

Record = dict[str, Any]
Result = dict[str, Any]
# (scorer, records, the request body) -> one result per record, in request order
Score = Callable[[Scorer, list[Record], Any], list[Result]]
# (scorer, records, results in request order, the request body) -> the results as returned (ranked, cut)
Arrange = Callable[[Scorer, list[Record], list[Result], Any], list[Result]]


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

    @property
    def tag(self) -> str:
        return self.name


def check_records(scorer: Scorer, records: list[Record], path_prefix: str, strict: bool) -> list[Result]:
    """What the model could not use in each record: fields it does not know, and its fields absent or null.

    With `strict`, an unknown field is a 422 naming its path instead. Counted per model for /metrics."""
    contract = scorer.bundle.contract
    known = known_fields(contract)
    features = [feature.name for feature in contract.features]
    needed = frozenset(features)
    checks = []
    unknown_count = missing_count = 0
    for record in records:
        # Set operations and `in` on values run at C speed: a complete, clean record costs a few microseconds.
        unknown = sorted(record.keys() - known) if not record.keys() <= known else []
        if contract.derived:
            record = contract.with_derived(record)
        if record.keys() >= needed and None not in record.values():
            missing: list[str] = []
        else:
            missing = [name for name in features if record.get(name) is None]
        unknown_count += len(unknown)
        missing_count += len(missing)
        checks.append({"unknown_fields": unknown, "missing_fields": missing})
    if strict and unknown_count:
        details = [
            {"path": f"{path_prefix}[{row}].{name}", "message": "not a field of this model (strict)"}
            for row, check in enumerate(checks)
            for name in check["unknown_fields"]
        ]
        raise InvalidRecords(f"{len(details)} field(s) are not fields of {scorer.name}", details)
    version = str(scorer.version)
    if unknown_count:
        metrics.RECORD_FIELDS.labels(scorer.name, version, "unknown").inc(unknown_count)
    if missing_count:
        metrics.RECORD_FIELDS.labels(scorer.name, version, "missing").inc(missing_count)
    return checks


def known_fields(contract: FeatureContract) -> frozenset[str]:
    """Every field a model version reads: its features, its ID, and the sources of its derived fields."""
    sources = {source for derivation in contract.derived for source in derivation.sources}
    return frozenset({contract.id_field, *(f.name for f in contract.features), *sources})
