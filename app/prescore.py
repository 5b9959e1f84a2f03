"""Scoring the stored customers ahead of their calls: `clm score customers`, the batch job behind fast profiles.

A profile scored on the spot costs 2-3 ms of CPU (churn with its exact reasons, the product boosters; 5-6 ms
before the TreeSHAP tables, measured back to back on a busy machine); read from `profile_scores` it is one query. The job scores, batch by batch, every customer whose stored scores
were not made from its current record by the versions served now (new customers, changed records, a promoted
version), and writes them with what made them. The profile uses a stored row only while all of that still
holds, so a stale row is never served: a customer changed since the last run is scored on view, as before.
Each batch is written in one transaction; a run cut short keeps the batches it wrote, and the next run scores
only what is left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

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
    with database.engine.connect() as connection:
        total = profile_scores.count_stale(connection, churn_version, products_version)
    done, number, after = 0, 0, ""
    while True:
        with database.engine.connect() as connection:
            stale = profile_scores.stale(connection, churn_version, products_version, after, batch_size)
        if not stale:
            return done
        records = [record for record, _ in stale]
        scored_at = datetime.now(UTC)
        rows = [
            {
                "customer_id": record["customer_id"],
                "features_updated_at": updated_at,
                "churn_version": churn_version,
                "products_version": products_version,
                "scores": dataclasses.asdict(scores),
                "scored_at": scored_at,
            }
            for (record, updated_at), scores in zip(
                stale, score_profiles(churn_scorer, products_scorer, records), strict=True
            )
        ]
        # A record changed meanwhile keeps the updated_at it was read with here: its row is stale, not wrong.
        with database.engine.begin() as connection:
            profile_scores.save(connection, rows)
        done += len(rows)
        number += 1
        after = records[-1]["customer_id"]
        progress(BatchScored(number=number, scored=len(rows), done=done, total=total))
