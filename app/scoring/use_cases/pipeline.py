"""The scoring pipeline: the steps every scoring route shares, written once (KServe's `Model.__call__` shape).

For a request of a use case: check the batch size, take the scorer of the requested line, complete stored
customers from the store, check what each record holds against the model's fields, score where
app/concurrency.py says, arrange (a ranking), log the predictions, maybe shadow-score after the response, and
answer with the version that scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import BackgroundTasks, Response

from app.concurrency import run_scoring
from app.db import Database
from app.json_io import results_response
from app.prediction_log import RequestPredictions, ScoredBatch
from app.scoring.batches import check_batch_size
from app.scoring.customers.store import fill_from_store
from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.shadow import ShadowScoring
from app.scoring.use_cases.base import Record, Result, UseCase, check_records


@dataclass(frozen=True)
class ScoringPipeline:
    models: LoadedModels
    database: Database
    shadow: ShadowScoring
    max_batch: int
    log: RequestPredictions
    request_id: str

    async def run(self, use_case: UseCase, body: Any, background: BackgroundTasks) -> Response:
        scorer, results = await self.results(use_case, body, background)
        return results_response(scorer.ref, self.request_id, results)

    async def results(
        self, use_case: UseCase, body: Any, background: BackgroundTasks
    ) -> tuple[Scorer, list[Result]]:
        """Every step but the response: the version that scored and its results (the Open Inference Protocol's
        routes answer them in their own shape, app/routers/inference.py)."""
        field = use_case.records_field
        records: list[Record] = getattr(body, field)
        check_batch_size(records, self.max_batch, field)
        scorer = self.models.for_line(use_case.name, body.line)
        if use_case.prepare is not None:
            records = use_case.prepare(scorer, records, body)
        sent = records
        if use_case.from_store:
            records = await fill_from_store(self.database, records, scorer, field, body.line)
        checks = check_records(scorer, records, field, body.strict, sent)
        results = await run_scoring(len(records), lambda: _score(use_case, scorer, records, checks, body))
        self.log(
            scorer,
            use_case.predictions(scorer, results),
            _scored_batch(use_case, scorer, sent, records, results),
        )
        if use_case.compare is not None:
            self.shadow.after_response(
                background,
                scorer,
                results,
                lambda challenger: use_case.score(challenger, records, _without_reasons(body)),
                use_case.compare,
            )
        return scorer, results


def _score(
    use_case: UseCase,
    scorer: Scorer,
    records: list[Record],
    checks: tuple[list[list[str]], list[list[str]]],
    body: Any,
) -> list[Result]:
    results = use_case.score(scorer, records, body)
    for result, unknown, missing in zip(results, *checks, strict=True):
        result["unknown_fields"] = unknown
        result["missing_fields"] = missing
    if use_case.arrange is not None:
        results = use_case.arrange(scorer, records, results, body)
    return results


def _scored_batch(
    use_case: UseCase, scorer: Scorer, sent: list[Record], records: list[Record], results: list[Result]
) -> ScoredBatch | None:
    """The records as the model read them with their results, for the log to keep some in full; None for a
    use case with several scores per record, or whose results are a ranked cut of the records."""
    if use_case.score_field is None or use_case.arrange is not None:
        return None
    # The store completed a record when it is not the one sent: a stored customer scored by id.
    by_id = (
        frozenset()
        if records is sent
        else frozenset(
            i
            for i, (record, original) in enumerate(zip(records, sent, strict=True))
            if record is not original
        )
    )
    return ScoredBatch(records, results, use_case.score_field, scorer.id_field, by_id)


def _without_reasons(body: Any) -> Any:
    """The request's options for the challenger: its results are compared, never returned, so no reasons."""
    return body.model_copy(update={"explain": False}) if "explain" in type(body).model_fields else body
