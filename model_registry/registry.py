"""The MLflow registry as this service sees it: registered models, aliases and loadable bundles.

Aliases, never stages or `latest`: `champion` is what is served, `challenger` an optional candidate.
Every read returns a concrete version number, which serving logs and returns with every score.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature

from model_registry.bundle import BUNDLE_FILE, ModelBundle

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT_PREFIX = "clm/"


@dataclass(frozen=True)
class VersionRef:
    """One registered model version, with the aliases that point at it."""

    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str | None
    created_at: datetime
    tags: dict[str, str] = field(default_factory=dict)


class RegistryUnavailable(Exception):
    """The registry could not be reached or answered with an error."""


class PyfuncFlavour(Protocol):
    """The MLflow pyfunc flavour a registered version carries: the record model (app/bulk/record_model.py),
    logged as code with the bundle as its artifact. The service supplies it, since model_registry never imports
    app/; a registry without one registers the bundle alone, as it does a bundle without boosters."""

    @property
    def code(self) -> Path: ...  # the models-from-code file MLflow stores with the version

    @property
    def bundle_artifact(self) -> str: ...  # the pyfunc artifact holding the bundle

    @property
    def model_name_key(self) -> str: ...  # the model_config key the registered name goes under

    @property
    def pip_requirements(self) -> list[str]: ...

    def signature(self, bundle: ModelBundle) -> ModelSignature: ...

    def input_example(self, bundle: ModelBundle) -> pd.DataFrame: ...


class ModelRegistry:
    def __init__(
        self, tracking_uri: str, artifact_root: str | None = None, flavour: PyfuncFlavour | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.flavour = flavour
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def experiment_id(self, model_name: str) -> str:
        """The experiment a model's training runs go to, created (with our artifact root) on first use."""
        name = EXPERIMENT_PREFIX + model_name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = Path(self.artifact_root).resolve().as_uri() if self.artifact_root else None
        return str(self.client.create_experiment(name, artifact_location=location))

    def register(self, registered_name: str, bundle: ModelBundle) -> VersionRef:
        """Log the bundle as the active run's model and register it as a new version.

        With a flavour, the version is an MLflow pyfunc model taking API records (signature and input example
        are the records'), so `mlflow models serve` and `mlflow.pyfunc.spark_udf` score the very same version
        as the service; its bundle is the pyfunc's artifact. Serving reads the bundle either way.
        """
        with tempfile.TemporaryDirectory() as tmp:
            bundle.save(Path(tmp) / "bundle")
            # A value version (parameters, no trees: model_registry/value.py) has no record model; it is scored
            # by the service's /v1/value/score only.
            if self.flavour is not None and bundle.boosters:
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(self.flavour.code),
                    artifacts={self.flavour.bundle_artifact: str(Path(tmp) / "bundle")},
                    model_config={self.flavour.model_name_key: registered_name},
                    signature=self.flavour.signature(bundle),
                    input_example=self.flavour.input_example(bundle),
                    pip_requirements=self.flavour.pip_requirements,
                )
                model_id = info.model_id
            else:
                logged = mlflow.initialize_logged_model(name="model")
                model_id = logged.model_id
                self.client.log_model_artifacts(model_id, str(Path(tmp) / "bundle"))
                self.client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        version = mlflow.register_model(f"models:/{model_id}", registered_name)
        return self.get_version(registered_name, int(version.version))

    def get_version(self, name: str, version: int) -> VersionRef:
        return _ref(self.client.get_model_version(name, str(version)))

    def resolve(self, name: str, alias: str) -> VersionRef | None:
        """The version an alias points to now; None when the model or the alias does not exist."""
        try:
            return _ref(self.client.get_model_version_by_alias(name, alias))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise RegistryUnavailable(str(exc)) from exc
        except Exception as exc:  # the store's own errors (database gone, disk full) vary by backend
            raise RegistryUnavailable(str(exc)) from exc

    def load(self, name: str, version: int, nthread: int = 1) -> ModelBundle:
        """Download a version's artifacts and load its bundle.

        A failed download raises RegistryUnavailable (the store's fault, worth retrying later); artifacts that
        download but do not load raise BundleError (the version's fault).
        """
        with tempfile.TemporaryDirectory() as tmp:
            try:
                source = self.client.get_model_version_download_uri(name, str(version))
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            except Exception as exc:  # MlflowException, OSError, HTTP errors: they vary by store
                raise RegistryUnavailable(f"could not download {name} version {version}: {exc}") from exc
            return ModelBundle.load(bundle_directory(Path(local)), nthread=nthread)

    def versions(self, name: str) -> list[VersionRef]:
        """Every version of a model, oldest first, with its aliases (a search does not return them)."""
        found = self.client.search_model_versions(f"name = '{name}'")
        aliases: dict[int, list[str]] = {}
        for alias, version in self.client.get_registered_model(name).aliases.items():
            aliases.setdefault(int(version), []).append(alias)
        refs = [replace(_ref(v), aliases=tuple(sorted(aliases.get(int(v.version), [])))) for v in found]
        return sorted(refs, key=lambda ref: ref.version)

    def registered_names(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models())

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(name, alias)

    def set_version_tags(self, name: str, version: int, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, str(value))

    def model_tags(self, name: str) -> dict[str, str]:
        """Tags on the registered model itself (not on a version)."""
        return dict(self.client.get_registered_model(name).tags or {})

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self.client.set_registered_model_tag(name, key, value)

    def run_metrics(self, ref: VersionRef) -> dict[str, float]:
        if ref.run_id is None:
            return {}
        return dict(self.client.get_run(ref.run_id).data.metrics)


def bundle_directory(model: Path) -> Path:
    """Where a downloaded version keeps its bundle: at its root (versions without the pyfunc flavour, among them
    every version registered before it existed), or as the record model's artifact."""
    if (model / BUNDLE_FILE).is_file():
        return model
    found = sorted(model.glob(f"artifacts/*/{BUNDLE_FILE}"))
    return found[0].parent if found else model  # none: ModelBundle.load names what is missing


def _ref(version: Any) -> VersionRef:
    return VersionRef(
        name=version.name,
        version=int(version.version),
        aliases=tuple(version.aliases or ()),
        run_id=version.run_id,
        created_at=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
        tags=dict(version.tags or {}),
    )
