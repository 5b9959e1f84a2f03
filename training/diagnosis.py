"""The effect diagnosis model: the probability that a listing is a top performer, from the levers its seller
controls and the context it does not, with each segment's benchmarks and score distribution stored alongside.

The holdout measures the effect model (EVALUATION.md's figures) and the diagnosis itself: listings that are
already top performers should be told of fewer gaps than the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb
from pydantic import BaseModel, ConfigDict, Field

from model_registry.bundle import ModelBundle
from model_registry.contract import FeatureContract, api_name
from model_registry.diagnosis import Diagnoser, Finding, Lever, SegmentRule
from model_registry.registry import ModelRegistry, VersionRef
from training.booster import fit_booster
from training.data import (
    Dataset,
    build_contract,
    dataset_of,
    encode_training_records,
    frame_records,
    id_field,
    read_frame,
)
from training.evaluation import binary_figures, decile_table
from training.publish import log_figures, log_holdout_plots, log_tables, publish, training_run
from training.spec import ModelSpec

log = logging.getLogger(__name__)
MODEL_KEY = "model"


class DiagnosisSettings(BaseModel):
    """The `[extra]` of a diagnosis spec."""

    model_config = ConfigDict(extra="forbid")

    levers: list[Lever] = Field(min_length=1, description="Fields the seller controls: the candidate gaps.")
    other_features: list[str] = Field(
        description="Features that are not levers: context, or derived from levers."
    )
    segments: SegmentRule
    min_uplift: float = Field(ge=0, description="Gaps worth less effect probability are not reported.")
    score_folds: int = Field(
        default=5, ge=2, description="Folds for the training listings' out-of-sample scores."
    )


def train_diagnosis(
    spec: ModelSpec, data_dir: Path, registry: ModelRegistry, *, as_challenger: bool = False
) -> tuple[VersionRef, dict[str, float]]:
    settings = DiagnosisSettings.model_validate(spec.extra)
    features = [lever.field for lever in settings.levers] + settings.other_features
    raw = read_frame(spec, data_dir)
    # Only the declared levers and other features become features; everything else is left out.
    dataset = dataset_of(spec, raw, exclude=[c for c in raw.columns if api_name(c) not in features])
    unusable = [f for f in features if f not in dataset.features.columns]
    if unusable:
        reasons = {f: dataset.dropped.get(f, "not in the data and not derived") for f in unusable}
        raise ValueError(f"{spec.key}: these levers or features cannot be features: {reasons}")
    dataset.features = dataset.features[features]
    contract = build_contract(dataset, id_field(spec), spec.training.min_category_count)
    listings = _listings_as_sent(raw, contract, settings.segments)
    if [listing[contract.id_field] for listing in listings] != dataset.ids.tolist():
        raise ValueError("the listings and the data set disagree on row order")
    matrix = encode_training_records(contract, listings)
    y = dataset.target
    train, val, hold = dataset.train, dataset.validation, dataset.holdout

    with training_run(registry, spec, dataset.dropped):
        booster = fit_booster(matrix[train], y[train], matrix[val], y[val], spec.training, spec.key)
        mlflow.log_param("best_rounds", booster.num_boosted_rounds())

        def predict(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
            return np.asarray(booster.inplace_predict(rows), dtype=np.float64)

        p_hold = predict(matrix[hold])
        scores = _out_of_sample_scores(matrix, y, dataset, spec, booster, settings.score_folds)
        fitted = ~hold
        diagnoser = Diagnoser.fit(
            levers=settings.levers,
            rule=settings.segments,
            min_uplift=settings.min_uplift,
            listings=[contract.with_derived(listings[i]) for i in np.flatnonzero(fitted)],
            top=y[fitted] == 1,
            scores=scores[fitted],
        )
        holdout_listings = [listings[i] for i in np.flatnonzero(hold)]
        findings = diagnoser.diagnose(holdout_listings, p_hold, contract, predict)

        figures = binary_figures(y[hold], p_hold) | gap_figures(findings, y[hold])
        log_figures(figures)
        log_tables(
            {
                "holdout_deciles": decile_table(y[hold], p_hold),
                "segments": _segment_table(diagnoser),
                "holdout_gaps_by_lever": _gaps_by_lever(findings),
            }
        )
        log_holdout_plots(y[hold], p_hold, spec.key)
        metadata: dict[str, Any] = {
            "use_case": spec.use_case,
            "line": spec.line,
            "description": spec.description,
            "holdout": figures,
            "diagnosis": diagnoser.model_dump(mode="json"),
            # A few holdout listings as a client sends them, and their scores: a freshly loaded version must
            # reproduce them (derived fields included) before it serves.
            "check": {"records": holdout_listings[:5], "probabilities": {MODEL_KEY: p_hold[:5].tolist()}},
        }
        bundle = ModelBundle(contract=contract, boosters={MODEL_KEY: booster}, metadata=metadata)
        ref = publish(registry, spec, bundle, as_challenger=as_challenger)
    log.info(
        "%s version %d: holdout ROC AUC %.4f; median gaps %.1f for top performers, %.1f for the rest",
        spec.registered_model,
        ref.version,
        figures["roc_auc"],
        figures["gaps_median_top_performers"],
        figures["gaps_median_others"],
    )
    return ref, figures


def gap_figures(findings: list[Finding], y: npt.NDArray[np.int8]) -> dict[str, float]:
    """How many gaps the holdout listings are told of: top performers (already at the top of their segment)
    against the rest. A diagnosis worth its name finds fewer gaps where there is less to fix."""
    counts = np.array([len(f.gaps) for f in findings], dtype=float)
    top = np.asarray(y) == 1
    return {
        "gaps_median_top_performers": float(np.median(counts[top])),
        "gaps_median_others": float(np.median(counts[~top])),
        "gaps_mean_top_performers": float(counts[top].mean()),
        "gaps_mean_others": float(counts[~top].mean()),
        "segment_fallback_share": float(np.mean([f.segment_fallback is not None for f in findings])),
    }


def _listings_as_sent(
    raw: pd.DataFrame, contract: FeatureContract, rule: SegmentRule
) -> list[dict[str, Any]]:
    """The rows as a client sends them: API names, raw fields only (derived ones are derived on encoding),
    restricted to what the service reads: the ID, raw features, derivations' sources and segment fields."""
    frame = raw.rename(columns=api_name)
    read = {contract.id_field, rule.tags_field, rule.price_field}
    read |= {f.name for f in contract.features} | {s for d in contract.derived for s in d.sources}
    return frame_records(frame[[c for c in frame.columns if c in read]])


def _out_of_sample_scores(
    matrix: npt.NDArray[np.float32],
    y: npt.NDArray[np.int8],
    dataset: Dataset,
    spec: ModelSpec,
    booster: xgb.Booster,
    folds: int,
) -> npt.NDArray[np.float64]:
    """Scores of the non-holdout listings from models that never learnt from them, so that a segment's score
    distribution is what new listings meet: each training row from a model fitted on the other folds
    (early-stopped on the validation rows, as the served model was), each validation row from the served model,
    which used those rows only to stop."""
    scores = np.full(len(y), np.nan)
    val = dataset.validation
    train_rows = np.flatnonzero(dataset.train)
    fold_of = np.random.default_rng(spec.training.seed).permutation(len(train_rows)) % folds
    for fold in range(folds):
        fit_rows, scored = train_rows[fold_of != fold], train_rows[fold_of == fold]
        fold_booster = fit_booster(
            matrix[fit_rows], y[fit_rows], matrix[val], y[val], spec.training, f"{spec.key} fold {fold + 1}"
        )
        scores[scored] = fold_booster.inplace_predict(matrix[scored])
    scores[val] = booster.inplace_predict(matrix[val])
    return scores


def _segment_table(diagnoser: Diagnoser) -> pd.DataFrame:
    rows = [
        {
            "segment": name,
            "listings": s.listings,
            "top_performers": s.top_performers,
            "benchmarked": bool(s.scores),
        }
        | s.benchmarks
        for name, s in diagnoser.segments.items()
    ]
    return pd.DataFrame(rows).set_index("segment")


def _gaps_by_lever(findings: list[Finding]) -> pd.DataFrame:
    gaps = [(g.metric, g.estimated_uplift) for f in findings for g in f.gaps]
    frame = pd.DataFrame(gaps, columns=["lever", "uplift"])
    return frame.groupby("lever").agg(listings=("uplift", "size"), mean_uplift=("uplift", "mean"))


def holdout_figures(spec: ModelSpec, data_dir: Path, bundle: ModelBundle) -> dict[str, float]:
    """A registered version's effect-model figures on the fixed holdout, as serving scores (the promotion gate's
    hook): the holdout listings as a client sends them, encoded by the version's own contract (derived fields
    included), then its booster."""
    settings = DiagnosisSettings.model_validate(spec.extra)
    raw = read_frame(spec, data_dir)
    dataset = dataset_of(spec, raw)
    listings = _listings_as_sent(raw, bundle.contract, settings.segments)
    if [listing[bundle.contract.id_field] for listing in listings] != dataset.ids.tolist():
        raise ValueError("the listings and the data set disagree on row order")
    holdout = [listings[i] for i in np.flatnonzero(dataset.holdout)]
    matrix, errors = bundle.contract.encode(holdout, "holdout")
    if errors:
        raise ValueError(f"the holdout listings do not fit the version's contract: {errors[:3]}")
    p_hold = np.asarray(bundle.boosters[MODEL_KEY].inplace_predict(matrix), dtype=np.float64)
    return binary_figures(dataset.target[dataset.holdout], p_hold)
