"""The kinds of model training knows, in one map: a new kind is a module and a line in KINDS.

A kind trains a version from a spec and scores a registered version's holdout for the promotion gate; the
CLI and the gate look a spec's kind up here and never name a kind themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from model_registry.bundle import ModelBundle
from model_registry.registry import ModelRegistry, VersionRef
from training import binary, diagnosis, products, value
from training.spec import ModelSpec


class Trainer(Protocol):
    """Trains a new version from the spec on the data and registers it; returns it and its holdout figures."""

    def __call__(
        self, spec: ModelSpec, data_dir: Path, registry: ModelRegistry, *, as_challenger: bool = False
    ) -> tuple[VersionRef, dict[str, float]]: ...


HoldoutEvaluator = Callable[[ModelSpec, Path, ModelBundle], dict[str, float]]
"""`(spec, data_dir, bundle) -> figures` holding at least the kind's gate figures."""

PROBABILITY_GATE = ("roc_auc", "ece", "log_loss")


@dataclass(frozen=True)
class Kind:
    train: Trainer
    holdout_figures: HoldoutEvaluator
    gate_figures: tuple[str, ...] = PROBABILITY_GATE  # what the promotion gate compares (training.promotion)
    headline: tuple[str, str] = ("roc_auc", "ROC AUC")  # the holdout figure `clm train` prints, and its name
    needs_target: bool = True  # the spec's data names a 0/1 target


KINDS: dict[str, Kind] = {
    "binary": Kind(train=binary.train_binary, holdout_figures=binary.holdout_figures),
    "products": Kind(train=products.train_products, holdout_figures=products.holdout_figures),
    "diagnosis": Kind(train=diagnosis.train_diagnosis, holdout_figures=diagnosis.holdout_figures),
    # Not a probability: its gate compares holdout purchase error and top-decile revenue capture.
    "value": Kind(
        train=value.train_value,
        holdout_figures=value.holdout_figures,
        gate_figures=("purchases_mae", "top_decile_capture"),
        headline=("purchases_mae", "purchases MAE"),
        needs_target=False,
    ),
}


def kind_of(spec: ModelSpec) -> Kind:
    return KINDS[spec.kind]
