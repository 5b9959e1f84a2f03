"""A model bundle: what one registered model version holds besides its MLflow flavour.

`clm_bundle.json` carries the feature contract and the use case's metadata (risk thresholds, grade cut-offs,
product eligibility, segment benchmarks, holdout figures); the boosters are native XGBoost UBJSON files,
never pickles. One version may hold several boosters (one per product), always as one consistent set.
Larger JSON documents ride along as files of their own (`documents`, listed in the manifest): the reference
profile drift is measured against (model_registry/drift.py), and a from-store version's gate rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xgboost as xgb

from model_registry.contract import FeatureContract

BUNDLE_FILE = "clm_bundle.json"
# A version trained on the service's own records: the rows its gate compares it on (training/promotion.py).
GATE_ROWS_FILE = "gate_rows.json"


class BundleError(Exception):
    """The artifacts of a model version are not a loadable bundle."""


@dataclass
class ModelBundle:
    contract: FeatureContract
    boosters: dict[str, xgb.Booster]
    metadata: dict[str, Any] = field(default_factory=dict)
    documents: dict[str, Any] = field(default_factory=dict)  # file name -> JSON value

    def save(self, directory: Path, booster_files: dict[str, str] | None = None) -> None:
        """Write the bundle; `booster_files` names boosters already saved there (the MLflow flavour's file)."""
        directory.mkdir(parents=True, exist_ok=True)
        files = dict(booster_files or {})
        for key, booster in self.boosters.items():
            if key not in files:
                files[key] = f"boosters/{key}.ubj"
                (directory / "boosters").mkdir(exist_ok=True)
                booster.save_model(directory / files[key])
        for name, document in self.documents.items():
            (directory / name).write_text(json.dumps(document, default=_json_default))
        manifest = {
            "contract": self.contract.to_dict(),
            "metadata": self.metadata,
            "boosters": files,
            "documents": sorted(self.documents),
        }
        (directory / BUNDLE_FILE).write_text(json.dumps(manifest, indent=2, default=_json_default))

    @classmethod
    def load(cls, directory: Path, nthread: int = 1) -> ModelBundle:
        manifest_path = directory / BUNDLE_FILE
        if not manifest_path.is_file():
            raise BundleError(f"{BUNDLE_FILE} is missing from the model version's artifacts")
        try:
            manifest = json.loads(manifest_path.read_text())
            contract = FeatureContract.from_dict(manifest["contract"])
            boosters = {}
            for key, relative in manifest["boosters"].items():
                booster = xgb.Booster(model_file=str(directory / relative))
                # One thread per booster: several workers each using every core collapse throughput.
                booster.set_param({"nthread": nthread})
                boosters[key] = booster
            documents = {
                name: json.loads((directory / name).read_text()) for name in manifest.get("documents", [])
            }
        except (KeyError, ValueError, OSError, xgb.core.XGBoostError) as exc:
            raise BundleError(f"model version artifacts are unreadable: {exc}") from exc
        for key, booster in boosters.items():
            if booster.num_features() != contract.n_columns:
                raise BundleError(
                    f"booster {key!r} reads {booster.num_features()} columns "
                    f"but the contract encodes {contract.n_columns}"
                )
        return cls(
            contract=contract, boosters=boosters, metadata=manifest.get("metadata", {}), documents=documents
        )


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in {BUNDLE_FILE}")
