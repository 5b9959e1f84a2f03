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
from training import binary, diagnosis, products
from training.spec import ModelSpec


class Trainer(Protocol):
    """Trains a new version from the spec on the data and registers it; returns it and its holdout figures."""

    def __call__(
        self, spec: ModelSpec, data_dir: Path, registry: ModelRegistry, *, as_challenger: bool = False
    ) -> tuple[VersionRef, dict[str, float]]: ...


HoldoutEvaluator = Callable[[ModelSpec, Path, ModelBundle], dict[str, float]]
"""`(spec, data_dir, bundle) -> figures` holding at least roc_auc, ece and log_loss."""


@dataclass(frozen=True)
class Kind:
    train: Trainer
    holdout_figures: HoldoutEvaluator


KINDS: dict[str, Kind] = {
    "binary": Kind(train=binary.train_binary, holdout_figures=binary.holdout_figures),
    "products": Kind(train=products.train_products, holdout_figures=products.holdout_figures),
    "diagnosis": Kind(train=diagnosis.train_diagnosis, holdout_figures=diagnosis.holdout_figures),
}


def kind_of(spec: ModelSpec) -> Kind:
    return KINDS[spec.kind]
