"""Customer–product matching: one propensity booster per add-on, all of them in one registered version.

Each product's booster learns, among the customers eligible for it, who owns it (Yes) from who does not (No).
It sees every other field, the other products included (owning streaming TV says much about streaming movies),
but never its own: that block of the matrix is missing in every row it learns from and every row it scores.
The catalogue (products, eligibility, hidden fields) comes from the spec and is stored with the version.
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

from model_registry.bundle import ModelBundle
from model_registry.catalogue import Product, ProductCatalogue, hide_fields
from model_registry.contract import FeatureContract
from model_registry.registry import ModelRegistry, VersionRef
from training.booster import fit_booster
from training.data import Dataset, build_contract, encode_training_records, id_field, load_dataset
from training.evaluation import binary_figures, decile_table
from training.publish import log_figures, log_tables, publish, training_run
from training.ranking import hidden_cases, ranking_figures
from training.spec import ModelSpec

log = logging.getLogger(__name__)

# Above this a product's holdout ROC AUC means its booster reads the answer somewhere (EVALUATION.md).
LEAK_SUSPECT_AUC = 0.95


def train_products(
    spec: ModelSpec, data_dir: Path, registry: ModelRegistry, *, as_challenger: bool = False
) -> tuple[VersionRef, dict[str, float]]:
    catalogue = ProductCatalogue.model_validate(spec.extra)
    dataset = load_dataset(spec, data_dir)
    contract = build_contract(dataset, id_field(spec), spec.training.min_category_count)
    _check_catalogue(catalogue, contract)
    records = dataset.records()
    matrix = encode_training_records(contract, records)

    with training_run(registry, spec, dataset.dropped):
        mlflow.log_dict({"products": catalogue.to_metadata()}, "catalogue.json")
        boosters: dict[str, xgb.Booster] = {}
        summary: dict[str, dict[str, float]] = {}
        popularity: dict[str, float] = {}
        tables: dict[str, pd.DataFrame] = {}
        for product in catalogue.products:
            booster, product_figures, deciles, popularity[product.name] = _train_one(
                product, spec, dataset, contract, matrix, records
            )
            boosters[product.name] = booster
            summary[product.name] = product_figures
            tables[f"holdout_deciles_{product.name}"] = deciles
            log_figures(product_figures, prefix=f"holdout.{product.name}")

        figures = _headline(summary)
        ranking = _ranking(catalogue, contract, boosters, dataset, popularity)
        figures.update({f"ranking.{k}": v for k, v in ranking.items()})
        log_figures(figures)
        tables["holdout_products"] = pd.DataFrame(summary).T.assign(training_popularity=pd.Series(popularity))
        log_tables(tables)
        _refuse_leaks(summary)

        hold_matrix = matrix[dataset.holdout][:5]
        metadata: dict[str, Any] = {
            "use_case": spec.use_case,
            "line": spec.line,
            "description": spec.description,
            "products": catalogue.to_metadata(),
            "holdout": figures,
            # A few holdout rows and every booster's scores: a freshly loaded version must reproduce them.
            # Scorer.check scores them without hiding each product's field: a match proves once more that
            # no booster reads its own product.
            "check": {
                "records": dataset.records(dataset.holdout)[:5],
                "probabilities": {
                    p.name: _predict(
                        boosters[p.name], hide_fields(hold_matrix, contract, p.hidden_fields)
                    ).tolist()
                    for p in catalogue.products
                },
            },
        }
        bundle = ModelBundle(contract=contract, boosters=boosters, metadata=metadata)
        ref = publish(registry, spec, bundle, as_challenger=as_challenger)
    log.info(
        "%s version %d: mean holdout ROC AUC %.4f; hidden product in top 3: %.1f %% (popularity %.1f %%)",
        spec.registered_model,
        ref.version,
        figures["roc_auc"],
        100 * ranking["hit_at_3"],
        100 * ranking["popularity_hit_at_3"],
    )
    return ref, figures


def _train_one(
    product: Product,
    spec: ModelSpec,
    dataset: Dataset,
    contract: FeatureContract,
    matrix: npt.NDArray[np.float32],
    records: list[dict[str, Any]],
) -> tuple[xgb.Booster, dict[str, float], pd.DataFrame, float]:
    """One product's booster from its eligible rows; its holdout figures, deciles and training popularity."""
    owns = np.fromiter((product.owns(r) for r in records), dtype=bool, count=len(records))
    # Eligible customers whose field is neither "Yes" nor "No" (none in the data) teach nothing either way.
    labelled = owns | np.fromiter((product.may_offer(r) for r in records), dtype=bool, count=len(records))
    y = owns.astype(np.int8)
    x = hide_fields(matrix, contract, product.hidden_fields)
    train, val, hold = dataset.train & labelled, dataset.validation & labelled, dataset.holdout & labelled
    booster = fit_booster(x[train], y[train], x[val], y[val], spec.training, f"products:{product.name}")
    mlflow.log_param(f"{product.name}.best_rounds", booster.num_boosted_rounds())
    p_hold = _predict(booster, x[hold])
    figures = binary_figures(y[hold], p_hold)
    popularity = float(y[labelled & ~dataset.holdout].mean())
    log.info("%s: %d eligible rows, holdout ROC AUC %.4f", product.name, labelled.sum(), figures["roc_auc"])
    return booster, figures, decile_table(y[hold], p_hold), popularity


def _headline(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    """The version's figures: the mean ROC AUC over products (the floor applies to it), its range, and each
    product's ROC AUC, PR AUC and positive rate (the full figures are in MLflow under holdout.<product>.)."""
    aucs = np.array([f["roc_auc"] for f in summary.values()])
    figures = {
        "roc_auc": float(aucs.mean()),
        "roc_auc_min": float(aucs.min()),
        "roc_auc_max": float(aucs.max()),
    }
    for name, product_figures in summary.items():
        for key in ("roc_auc", "pr_auc", "positive_rate"):
            figures[f"{name}.{key}"] = product_figures[key]
    return figures


def _ranking(
    catalogue: ProductCatalogue,
    contract: FeatureContract,
    boosters: dict[str, xgb.Booster],
    dataset: Dataset,
    popularity: dict[str, float],
) -> dict[str, float]:
    """Hidden-product hit rates on the holdout, for the model and for ranking by training popularity."""
    cases = hidden_cases(catalogue, dataset.records(dataset.holdout), dataset.ids[dataset.holdout].tolist())
    matrix, _ = contract.encode([c.record for c in cases])
    propensity = {
        p.name: _predict(boosters[p.name], hide_fields(matrix, contract, p.hidden_fields))
        for p in catalogue.products
    }
    return ranking_figures(cases, propensity, popularity)


class SuspectedLeakError(ValueError):
    """A product's booster scores too well on the holdout: it reads the answer from some field."""


def _refuse_leaks(summary: dict[str, dict[str, float]]) -> None:
    """Never register a version with a leaking booster; its run stays in MLflow (failed) to investigate."""
    leaking = {name: round(f["roc_auc"], 4) for name, f in summary.items() if f["roc_auc"] > LEAK_SUSPECT_AUC}
    if leaking:
        raise SuspectedLeakError(
            f"holdout ROC AUC above {LEAK_SUSPECT_AUC} for {leaking}: some feature gives the answer away "
            "(the bill? the product's own field?); the version is not registered"
        )


def _predict(booster: xgb.Booster, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    return np.asarray(booster.inplace_predict(matrix), dtype=np.float64)


def _check_catalogue(catalogue: ProductCatalogue, contract: FeatureContract) -> None:
    """Every product must be a categorical field of the data holding its owned and not-owned values."""
    features = {f.name: f for f in contract.features}
    for product in catalogue.products:
        feature = features.get(product.name)
        if feature is None or feature.kind != "categorical":
            raise ValueError(f"product {product.name!r} is not a categorical field of the data")
        if not {product.owned, product.not_owned} <= set(feature.categories):
            raise ValueError(
                f"product {product.name!r} never holds {product.owned!r} and {product.not_owned!r}"
            )


def holdout_figures(spec: ModelSpec, data_dir: Path, bundle: ModelBundle) -> dict[str, float]:
    """A registered version's figures on the fixed holdout, as serving scores (the promotion gate's hook):
    each product from the version's own catalogue, contract and booster, on its eligible holdout rows with its
    own fields hidden. Besides training's headline, the mean calibration error and log loss over products."""
    catalogue = ProductCatalogue.from_metadata(bundle.metadata)
    dataset = load_dataset(spec, data_dir)
    records = dataset.records(dataset.holdout)
    matrix, errors = bundle.contract.encode(records, "holdout")
    if errors:
        raise ValueError(f"the holdout rows do not fit the version's contract: {errors[:3]}")
    summary = {}
    for product in catalogue.products:
        owns = np.fromiter((product.owns(r) for r in records), dtype=bool, count=len(records))
        offer = np.fromiter((product.may_offer(r) for r in records), dtype=bool, count=len(records))
        labelled = owns | offer
        hidden = hide_fields(matrix[labelled], bundle.contract, product.hidden_fields)
        summary[product.name] = binary_figures(
            owns[labelled], _predict(bundle.boosters[product.name], hidden)
        )
    figures = _headline(summary)
    for key in ("ece", "log_loss"):
        figures[key] = float(np.mean([f[key] for f in summary.values()]))
    return figures
