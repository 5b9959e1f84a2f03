"""Training registers real versions in a real MLflow registry, with their contract, figures and plots."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from model_registry.registry import CHAMPION, ModelRegistry
from tests.conftest import small
from training.binary import train_binary
from training.data import is_holdout, load_dataset
from training.spec import find_spec


def test_the_holdout_split_never_changes() -> None:
    """Versions are compared on the same rows: these memberships are fixed by EVALUATION.md's hash."""
    ids = ["7590-VHVEG", "5575-GNVDE", "3668-QPYBK", "7795-CFOCW", "9237-HQITU", "7892-POOKP", 0, 1, 2, 3]
    assert [i for i in ids if is_holdout(i)] == ["7892-POOKP", 0, 1]


def test_the_first_version_becomes_champion_and_the_next_waits_for_promotion(
    tmp_path: Path, data_dir: Path
) -> None:
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))
    spec = small(find_spec("churn"))
    first, figures = train_binary(spec, data_dir, registry)
    second, _ = train_binary(spec, data_dir, registry)
    assert CHAMPION in first.aliases
    assert second.aliases == ()
    assert registry.resolve("clm-churn", CHAMPION).version == first.version
    for key in (
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
        "ece",
        "top_decile_lift",
        "top_decile_conversion",
        "ks",
    ):
        assert key in figures
        assert registry.run_metrics(first)[f"holdout.{key}"] == pytest.approx(figures[key])
    artifacts = {
        a.path for a in mlflow.MlflowClient(registry.tracking_uri).list_artifacts(first.run_id, "plots")
    }
    assert {"plots/lift.png", "plots/calibration.png"} <= artifacts


def test_the_registered_version_carries_its_contract_signature_and_example(
    registry: ModelRegistry, churn_version: int
) -> None:
    bundle = registry.load("clm-churn", churn_version)
    fields = {f.name for f in bundle.contract.features}
    assert "customer_id" not in fields
    assert "churn" not in fields
    assert {"tenure", "contract", "total_charges"} <= fields
    contract_kind = {f.name: f.kind for f in bundle.contract.features}
    assert contract_kind["total_charges"] == "numeric"
    assert "Month-to-month" in next(f for f in bundle.contract.features if f.name == "contract").categories
    source = registry.client.get_model_version_download_uri("clm-churn", str(churn_version))
    model = mlflow.models.Model.load(
        mlflow.artifacts.download_artifacts(source, tracking_uri=registry.tracking_uri)
    )
    assert model.signature is not None
    # The pyfunc flavour is the record model: it takes API records, as the API does (tests/test_bulk_scoring.py).
    assert {"customer_id", "tenure", "contract", "total_charges"} <= set(model.signature.inputs.input_names())
    assert {"churn_probability", "risk_level"} <= set(model.signature.outputs.input_names())
    assert model.saved_input_example_info is not None
    assert "python_function" in model.flavors


def test_left_out_columns_never_reach_the_features(data_dir: Path) -> None:
    spec = find_spec("churn")
    dataset = load_dataset(spec, data_dir)
    assert "customer_id" not in dataset.features.columns
    assert "churn" not in dataset.features.columns
    assert dataset.holdout.sum() == sum(is_holdout(i) for i in dataset.ids)
