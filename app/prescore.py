"""Scoring the stored customers ahead of their calls: `clm score customers`, the batch job behind fast profiles.

A profile scored on the spot costs 2-3 ms of CPU (churn with its exact reasons, the product boosters; 5-6 ms
before the TreeSHAP tables, measured back to back on a busy machine); read from `profile_scores` it is one query. The job scores, batch by batch, every customer whose stored scores
were not made from its current record by the versions served now (new customers, changed records, a promoted
version), and writes them with what made them. The profile uses a stored row only while all of that still
holds, so a stale row is never served: a customer changed since the last run is scored on view, as before.
Each batch is written in one transaction; a run cut short keeps the batches it wrote, and the next run scores
only what is left. The service's background refresher (app/profile_refresh.py) scores with the same functions,
using the scorers its worker serves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.db import Database
from app.repositories import profile_scores
from app.scoring.customers.profile import score_profiles
from app.scoring.runtime.scorer import Scorer


@dataclass(frozen=True)
class BatchScored:
    number: int
    scored: int  # in this batch
    done: int  # so far
    total: int  # customers that needed scoring when the run started


Stale = list[tuple[dict[str, Any], datetime]]  # records with the updated_at they were read with


def count_stale(database: Database, churn_version: int, products_version: int | None) -> int:
    """How many stored customers' stored scores are not current for these versions."""
    with database.engine.connect() as connection:
        return profile_scores.count_stale(connection, churn_version, products_version)


def stale_batch(
    database: Database, churn_version: int, products_version: int | None, after: str, limit: int
) -> Stale:
    """The next `limit` customers, by id after `after`, whose stored scores are not current."""
    with database.engine.connect() as connection:
        return profile_scores.stale(connection, churn_version, products_version, after, limit)


def scored_rows(stale: Stale, churn_scorer: Scorer, products_scorer: Scorer | None) -> list[dict[str, Any]]:
    """The `profile_scores` rows of these customers: their scores by these versions, with what made them."""
    records = [record for record, _ in stale]
    scored_at = datetime.now(UTC)
    # A record changed meanwhile keeps the updated_at it was read with here: its row is stale, not wrong.
    return [
        {
            "customer_id": record["customer_id"],
            "features_updated_at": updated_at,
            "churn_version": churn_scorer.version,
            "products_version": products_scorer.version if products_scorer else None,
            # Not dataclasses.asdict: it deep-copies every reason of every customer (0.31 s per 1,000, holding
            # the GIL); the results are fresh dicts and lists, stored as they are.
            "scores": {"churn": scores.churn, "offers": scores.offers},
            "scored_at": scored_at,
        }
        for (record, updated_at), scores in zip(
            stale, score_profiles(churn_scorer, products_scorer, records), strict=True
        )
    ]


def prescore_profiles(
    database: Database,
    churn_scorer: Scorer,
    products_scorer: Scorer | None,
    batch_size: int,
    progress: Callable[[BatchScored], None],
) -> int:
    """Score every stored customer whose stored scores are not current; returns how many were scored."""
    churn_version = churn_scorer.version
    products_version = products_scorer.version if products_scorer else None
    total = count_stale(database, churn_version, products_version)
    done, number, after = 0, 0, ""
    while True:
        stale = stale_batch(database, churn_version, products_version, after, batch_size)
        if not stale:
            return done
        rows = scored_rows(stale, churn_scorer, products_scorer)
        with database.engine.begin() as connection:
            profile_scores.save(connection, rows)
        done += len(rows)
        number += 1
        after = rows[-1]["customer_id"]
        progress(BatchScored(number=number, scored=len(rows), done=done, total=total))
