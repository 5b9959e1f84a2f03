"""`clm`: train, list, promote and roll back the service's models."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from model_registry.registry import CHAMPION, ModelRegistry
from model_registry.settings import RegistrySettings
from training.binary import train_binary
from training.diagnosis import train_diagnosis
from training.products import train_products
from training.spec import ModelSpec, all_specs, find_spec

app = typer.Typer(
    help="Train, compare, promote and roll back the lifecycle scoring models.", no_args_is_help=True
)
models_app = typer.Typer(help="What the registry holds.", no_args_is_help=True)
app.add_typer(models_app, name="models")
log = logging.getLogger("clm")


class TrainingSettings(RegistrySettings):
    model_config = SettingsConfigDict(env_prefix="CLM_", extra="ignore")

    data_dir: Path = Field(default=Path("../shared/data"), description="Folder holding the data sets.")


def _registry(settings: TrainingSettings) -> ModelRegistry:
    Path("var").mkdir(exist_ok=True)
    return ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))


def _train(spec: ModelSpec, settings: TrainingSettings, as_challenger: bool) -> None:
    trainers = {"binary": train_binary, "products": train_products, "diagnosis": train_diagnosis}
    trainer = trainers.get(spec.kind)
    if trainer is None:
        raise typer.BadParameter(f"model kind {spec.kind!r} has no trainer yet")
    ref, figures = trainer(spec, settings.data_dir, _registry(settings), as_challenger=as_challenger)
    aliases = ", ".join(ref.aliases) or "no alias"
    typer.echo(f"{ref.name} version {ref.version} ({aliases}): holdout ROC AUC {figures['roc_auc']:.4f}")


@app.callback()
def _configure(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "mlflow", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def train(
    use_case: Annotated[str, typer.Argument(help="churn, leads, products, diagnosis; or 'all'")],
    line: Annotated[str | None, typer.Option(help="The line of a use case with several (leads).")] = None,
    missing_only: Annotated[
        bool, typer.Option(help="With 'all': train only models that have no champion yet.")
    ] = False,
) -> None:
    """Train a model from its spec on the real data and register a new version."""
    settings = TrainingSettings()
    if use_case == "all":
        registry = _registry(settings)
        for spec in all_specs():
            if missing_only and registry.resolve(spec.registered_model, CHAMPION) is not None:
                typer.echo(f"{spec.registered_model}: has a champion, not retrained")
                continue
            _train(spec, settings, as_challenger=False)
        return
    try:
        spec = find_spec(use_case, line)
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from exc
    _train(spec, settings, as_challenger=False)


@models_app.command("list")
def list_models() -> None:
    """Every registered model with its versions, aliases and holdout ROC AUC."""
    registry = _registry(TrainingSettings())
    names = registry.registered_names()
    if not names:
        typer.echo("the registry holds no model yet: run `clm train all`")
    for name in names:
        typer.echo(name)
        for ref in registry.versions(name):
            auc = ref.tags.get("holdout.roc_auc", "?")
            aliases = ",".join(ref.aliases) or "-"
            typer.echo(
                f"  version {ref.version:<4} {aliases:<22} roc_auc={auc:<10} {ref.created_at:%Y-%m-%d %H:%M}"
            )


@app.command()
def promote(
    use_case: Annotated[str, typer.Argument(help="churn, leads, products, diagnosis, or a registered name")],
    version: Annotated[int, typer.Option(help="The version to serve.")],
    line: Annotated[str | None, typer.Option(help="The line of a use case with several (leads).")] = None,
) -> None:
    """Point the champion alias at a version: the service picks it up on its next reload."""
    registry = _registry(TrainingSettings())
    name = _registered_name(use_case, line)
    registry.get_version(name, version)
    registry.set_alias(name, CHAMPION, version)
    typer.echo(f"{name}: champion is now version {version}")


def _registered_name(use_case: str, line: str | None) -> str:
    if use_case.startswith("clm-"):
        return use_case
    try:
        return find_spec(use_case, line).registered_model
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from exc
