"""Logging a trained model to MLflow and registering it: the one way every model kind is published."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import numpy.typing as npt
import pandas as pd

from model_registry.bundle import ModelBundle
from model_registry.history import FIRST_VERSION, move_champion
from model_registry.registry import CHALLENGER, CHAMPION, ModelRegistry, VersionRef
from training.evaluation import calibration_chart, lift_chart
from training.spec import ModelSpec

log = logging.getLogger(__name__)


@contextmanager
def training_run(
    registry: ModelRegistry, spec: ModelSpec, left_out: dict[str, str] | None = None
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run for one training of a spec, with the spec, its XGBoost settings and the left-out columns
    (and why each is left out) logged up front, the same for every model kind."""
    with _uris_of(registry):
        experiment_id = registry.experiment_id(spec.registered_model)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"train {spec.key}") as run:
            mlflow.set_tags(
                {"clm.use_case": spec.use_case, "clm.line": spec.line or "", "clm.kind": spec.kind}
            )
            mlflow.log_dict(spec.model_dump(mode="json"), "spec.json")
            mlflow.log_params({f"xgb.{k}": v for k, v in spec.training.model_dump().items()})
            if left_out is not None:
                mlflow.log_dict(left_out, "left_out_columns.json")
            yield run


@contextmanager
def _uris_of(registry: ModelRegistry) -> Iterator[None]:
    """MLflow pointed at the registry for the run. mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI (and
    the registry's) to the process environment, which outlives the run: a later `Settings()` in the same process
    (a test, a notebook training two registries) would read that registry instead of its own. Restored after."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {name: os.environ.get(name) for name in names}
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.tracking_uri)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def log_tables(tables: dict[str, pd.DataFrame]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, table in tables.items():
            path = Path(tmp) / f"{name}.csv"
            table.to_csv(path)
            mlflow.log_artifact(str(path), "tables")


def log_holdout_plots(y: npt.ArrayLike, p: npt.NDArray[np.floating], key: str) -> None:
    """The lift chart and calibration curve of a binary model's holdout scores, under plots/."""
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.log_artifact(str(lift_chart(y, p, Path(tmp) / "lift.png", f"{key}: lift")), "plots")
        calibration = calibration_chart(y, p, Path(tmp) / "calibration.png", f"{key}: calibration")
        mlflow.log_artifact(str(calibration), "plots")


def publish(
    registry: ModelRegistry,
    spec: ModelSpec,
    bundle: ModelBundle,
    *,
    as_challenger: bool = False,
) -> VersionRef:
    """Register the bundle as a new version. The first version becomes champion; later ones only when promoted
    (or, from `clm retrain`, challenger)."""
    mlflow.log_text(json.dumps(bundle.contract.to_dict(), indent=2), "feature_contract.json")
    ref = registry.register(spec.registered_model, bundle)
    registry.set_version_tags(
        spec.registered_model,
        ref.version,
        {
            f"holdout.{k}": round(v, 6)
            for k, v in bundle.metadata.get("holdout", {}).items()
            if isinstance(v, int | float)
        },
    )
    if registry.resolve(spec.registered_model, CHAMPION) is None:
        move_champion(registry, spec.registered_model, ref.version, action=FIRST_VERSION)
        log.info("%s version %d is the first: it is now %s", spec.registered_model, ref.version, CHAMPION)
    elif as_challenger:
        registry.set_alias(spec.registered_model, CHALLENGER, ref.version)
        log.info("%s version %d is now %s", spec.registered_model, ref.version, CHALLENGER)
    else:
        log.info("%s version %d registered; promote it to serve it", spec.registered_model, ref.version)
    return registry.get_version(spec.registered_model, ref.version)


def log_figures(figures: dict[str, Any], prefix: str = "holdout") -> None:
    mlflow.log_metrics({f"{prefix}.{k}": float(v) for k, v in figures.items() if isinstance(v, int | float)})
