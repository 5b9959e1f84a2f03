"""One binary model from a spec: churn, and every lead line. Risk levels or grades come from the spec."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import numpy.typing as npt
import pandas as pd

from model_registry.bundle import GATE_ROWS_FILE, ModelBundle
from model_registry.contractual import lifetime_metadata
from model_registry.drift import REFERENCE_FILE, reference_profile
from model_registry.grades import assign_grades, assign_risk_levels
from model_registry.registry import ModelRegistry, VersionRef
from training.booster import fit_booster
from training.data import Dataset, build_contract, encode_training_records, id_field, load_dataset
from training.evaluation import binary_figures, decile_table
from training.publish import log_figures, log_holdout_plots, log_tables, publish, training_run
from training.spec import GradeSpec, ModelSpec

log = logging.getLogger(__name__)
MODEL_KEY = "model"


def grade_cutoffs(spec: GradeSpec, p_val: npt.NDArray[np.floating]) -> list[dict[str, Any]]:
    """Grade cut-offs from the validation rows: A holds the top `shares['A']` of leads, B the next
    `shares['B']`, and so on; the grade after the last share takes the rest. Each cut-off is a validation
    lead's own probability (quantile method "higher"), so a grade holds at most its share, ties aside."""
    grades: list[dict[str, Any]] = []
    cumulative = 0.0
    for grade, share in spec.shares.items():
        cumulative += share
        cutoff = float(np.quantile(p_val, 1 - cumulative, method="higher"))
        grades.append({"grade": grade, "min_probability": cutoff, "share": share})
    last = chr(ord(grades[-1]["grade"]) + 1)
    grades.append({"grade": last, "min_probability": 0.0, "share": round(1 - cumulative, 6)})
    return grades


def grade_table(
    grades: list[dict[str, Any]],
    p_val: npt.NDArray[np.floating],
    y_val: npt.ArrayLike,
    p_hold: npt.NDArray[np.floating],
    y_hold: npt.ArrayLike,
) -> pd.DataFrame:
    """Per grade, best first: its cut-off, its share and conversion on the validation rows it was chosen on,
    and on the holdout its rows, share, observed conversion (positive_rate) and lift over the average lead."""
    names = [g["grade"] for g in grades]
    val = pd.DataFrame({"grade": assign_grades(p_val, grades), "y": np.asarray(y_val, dtype=float)})
    hold = pd.DataFrame({"grade": assign_grades(p_hold, grades), "y": np.asarray(y_hold, dtype=float)})
    table = pd.DataFrame(
        {"min_probability": [g["min_probability"] for g in grades]}, index=pd.Index(names, name="grade")
    )
    table["validation_share"] = val.groupby("grade").size().reindex(names, fill_value=0) / len(val)
    table["validation_conversion"] = val.groupby("grade")["y"].mean().reindex(names)
    table["rows"] = hold.groupby("grade").size().reindex(names, fill_value=0)
    table["share"] = table["rows"] / len(hold)
    table["positive_rate"] = hold.groupby("grade")["y"].mean().reindex(names)
    table["lift"] = table["positive_rate"] / hold["y"].mean()
    return table


def describe_grades(grades: list[dict[str, Any]], table: pd.DataFrame) -> None:
    """What each grade promises, in words for the people who work the leads: its place in the pool, its
    probability band and the conversion observed in it on the holdout (rows the model never saw)."""
    upper = None
    for position, grade in enumerate(grades):
        name, cutoff = grade["grade"], grade["min_probability"]
        conversion, lift = float(table.loc[name, "positive_rate"]), float(table.loc[name, "lift"])
        if position == 0:
            place = f"the top {grade['share']:.0%} of leads (conversion probability {cutoff:.3f} or more)"
        elif position == len(grades) - 1:
            place = f"the remaining {grade['share']:.0%} (probability below {upper:.3f})"
        else:
            place = f"the next {grade['share']:.0%} (probability {cutoff:.3f} to {upper:.3f})"
        grade["expected_conversion"] = conversion
        grade["meaning"] = (
            f"{name}: {place}; {conversion:.1%} converted on the holdout, {lift:.1f}x the average lead"
        )
        upper = cutoff


def train_binary(
    spec: ModelSpec, data_dir: Path, registry: ModelRegistry, *, as_challenger: bool = False
) -> tuple[VersionRef, dict[str, float]]:
    return train_binary_on(load_dataset(spec, data_dir), spec, registry, as_challenger=as_challenger)


def train_binary_on(
    dataset: Dataset,
    spec: ModelSpec,
    registry: ModelRegistry,
    *,
    as_challenger: bool = False,
    source: dict[str, Any] | None = None,
) -> tuple[VersionRef, dict[str, float]]:
    """Train on a dataset (the spec's file, or the service's own records: training/from_store.py), figures on
    its holdout rows. `source` says where the rows came from when not from the spec's file; it is stored with
    the version, and its holdout rows become the version's gate rows (training/promotion.py)."""
    contract = build_contract(dataset, id_field(spec), spec.training.min_category_count)
    matrix = encode_training_records(contract, dataset.records())
    y = dataset.target
    train, val, hold = dataset.train, dataset.validation, dataset.holdout

    with training_run(registry, spec, dataset.dropped):
        booster = fit_booster(matrix[train], y[train], matrix[val], y[val], spec.training, spec.key)
        mlflow.log_param("best_rounds", booster.num_boosted_rounds())
        p_val = np.asarray(booster.inplace_predict(matrix[val]), dtype=np.float64)
        p_hold = np.asarray(booster.inplace_predict(matrix[hold]), dtype=np.float64)

        figures = binary_figures(y[hold], p_hold)
        metadata: dict[str, Any] = {
            "use_case": spec.use_case,
            "line": spec.line,
            "description": spec.description,
        }
        tables = {"holdout_deciles": decile_table(y[hold], p_hold)}
        if spec.profile is not None:
            metadata["profile"] = spec.profile.model_dump()
            if spec.profile.value_field is not None:
                metadata["lifetime_value"] = lifetime_metadata(
                    spec.profile, dataset.records(val), p_val, float(y[train].mean())
                )
        if spec.risk is not None:
            metadata["risk_levels"] = {"high": spec.risk.high, "medium": spec.risk.medium}
            levels = np.asarray(assign_risk_levels(p_hold, metadata["risk_levels"]))
            tables["holdout_risk_levels"] = _rate_by(levels, y[hold], "risk_level")
        if spec.grades is not None:
            grades = grade_cutoffs(spec.grades, p_val)
            table = grade_table(grades, p_val, y[val], p_hold, y[hold])
            describe_grades(grades, table)
            metadata["grades"] = grades
            metadata["score_quantiles"] = np.quantile(p_val, np.linspace(0, 1, 101)).tolist()
            tables["holdout_grades"] = table
            for grade, rate in table["positive_rate"].items():
                figures[f"grade_{grade}_positive_rate"] = float(rate)
            figures["grades_fall_strictly"] = float(
                bool(np.all(np.diff(table["positive_rate"].to_numpy()) < 0))
            )
            _grade_chart(table, spec)
            for grade in grades:
                log.info("%s", grade["meaning"])
        metadata["holdout"] = figures
        documents: dict[str, Any] = {
            # What drift is measured against: the training rows' fields and the validation rows' scores.
            REFERENCE_FILE: reference_profile(contract, dataset.records(train), p_val),
        }
        if source is not None:
            metadata["source"] = source
            documents[GATE_ROWS_FILE] = {
                "description": source["gate_rows"],
                "records": dataset.records(hold),
                "targets": y[hold].tolist(),
            }
        # A few holdout rows and their scores: a freshly loaded version must reproduce them before it serves.
        metadata["check"] = {
            "records": dataset.records(hold)[:5],
            "probabilities": {MODEL_KEY: p_hold[:5].tolist()},
        }
        log_figures(figures)
        log_tables(tables)
        log_holdout_plots(y[hold], p_hold, spec.key)
        bundle = ModelBundle(
            contract=contract, boosters={MODEL_KEY: booster}, metadata=metadata, documents=documents
        )
        ref = publish(registry, spec, bundle, as_challenger=as_challenger)
    log.info("%s version %d: holdout ROC AUC %.4f", spec.registered_model, ref.version, figures["roc_auc"])
    return ref, figures


def _rate_by(labels: npt.NDArray[np.str_], y: npt.ArrayLike, name: str) -> pd.DataFrame:
    frame = pd.DataFrame({name: labels, "y": np.asarray(y, dtype=float)})
    table = frame.groupby(name).agg(rows=("y", "size"), positive_rate=("y", "mean")).sort_index()
    table["lift"] = table["positive_rate"] / frame["y"].mean()
    return table


def _grade_chart(table: pd.DataFrame, spec: ModelSpec) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.bar(table.index, table["positive_rate"], color="#55a868")
    for grade, row in table.iterrows():
        ax.annotate(f"{row['lift']:.1f}x", (grade, row["positive_rate"]), ha="center", va="bottom")
    ax.set_xlabel("grade")
    ax.set_ylabel("observed conversion (holdout)")
    ax.set_title(f"{spec.key}: conversion and lift by grade")
    fig.tight_layout()
    mlflow.log_figure(fig, "plots/grades.png")
    plt.close(fig)


def holdout_figures(spec: ModelSpec, data_dir: Path, bundle: ModelBundle) -> dict[str, float]:
    """A registered version's figures on the fixed holdout, scored the way serving scores: API records encoded
    by the version's own contract, then its booster (the promotion gate's hook for the binary kind)."""
    dataset = load_dataset(spec, data_dir)
    return figures_on(bundle, dataset.records(dataset.holdout), dataset.target[dataset.holdout])


def figures_on(
    bundle: ModelBundle, records: list[dict[str, Any]], targets: npt.ArrayLike
) -> dict[str, float]:
    """A version's figures on records and their 0/1 targets, scored the way serving scores them."""
    matrix, errors = bundle.contract.encode(records, "holdout")
    if errors:
        raise ValueError(f"the rows do not fit the version's contract: {errors[:3]}")
    p = np.asarray(bundle.boosters[MODEL_KEY].inplace_predict(matrix), dtype=np.float64)
    return binary_figures(np.asarray(targets), p)
