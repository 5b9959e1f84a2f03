"""`clm`: train, list, promote and roll back the service's models."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from model_registry.settings import RegistrySettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from model_registry.registry import ModelRegistry, PyfuncFlavour
    from training import promotion
    from training.spec import ModelSpec
    from training.spec_check import SpecCheck

app = typer.Typer(
    help="Train, compare, promote and roll back the lifecycle scoring models.", no_args_is_help=True
)
models_app = typer.Typer(help="What the registry holds.", no_args_is_help=True)
app.add_typer(models_app, name="models")
spec_app = typer.Typer(help="Spec files: check one before training it.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")
value_app = typer.Typer(help="Value lines: their customers' transaction summaries.", no_args_is_help=True)
app.add_typer(value_app, name="value")
log = logging.getLogger("clm")


class TrainingSettings(RegistrySettings):
    model_config = SettingsConfigDict(env_prefix="CLM_", extra="ignore")

    data_dir: Path = Field(default=Path("../shared/data"), description="Folder holding the data sets.")
    specs_dir: Path | None = Field(
        default=None,
        description="A folder of *.toml specs, read besides the packaged ones (training/specs/).",
    )
    database_url: str = Field(
        default="sqlite:///var/clm.db",
        description="The service's database, read by `clm retrain --from-store` (the service's own setting).",
    )
    retrain_min_rows: int = Field(
        default=500,
        ge=10,
        description="`clm retrain --from-store` refuses fewer judged records (outside the fixed holdout).",
    )
    retrain_min_positives: int = Field(
        default=50, ge=1, description="`clm retrain --from-store` refuses fewer positive outcomes among them."
    )


# The pyfunc flavour of every version `clm` registers: the record model, which is the service's code
# (app/bulk/record_model.py). app/cli.py, composing `clm`, hands over what makes it: training never imports app/,
# and the flavour is made when a command opens the registry, not when `clm` starts (it imports the libraries).
_flavours: list[Callable[[], PyfuncFlavour]] = []


def register_with(flavour: Callable[[], PyfuncFlavour]) -> None:
    """Give every version the commands register the pyfunc flavour `flavour()` makes."""
    _flavours[:] = [flavour]


def _registry(settings: TrainingSettings) -> ModelRegistry:
    # Heavy modules (MLflow, XGBoost, pandas) are imported in the commands using them: `clm --help` starts in <1 s.
    from model_registry.registry import ModelRegistry

    Path("var").mkdir(exist_ok=True)
    flavour = _flavours[0]() if _flavours else None
    return ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root), flavour)


def _train(spec: ModelSpec, settings: TrainingSettings, as_challenger: bool) -> None:
    from training.data import DataError
    from training.kinds import kind_of

    kind = kind_of(spec)
    try:
        ref, figures = kind.train(spec, settings.data_dir, _registry(settings), as_challenger=as_challenger)
    except DataError as exc:
        _fail(str(exc))
    aliases = ", ".join(ref.aliases) or "no alias"
    figure, label = kind.headline
    typer.echo(f"{ref.name} version {ref.version} ({aliases}): holdout {label} {figures[figure]:.4f}")


@app.callback()
def _configure(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "mlflow", "urllib3", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def train(
    use_case: Annotated[
        str | None, typer.Argument(help="churn, leads, products, diagnosis; or 'all'", show_default=False)
    ] = None,
    line: Annotated[str | None, typer.Option(help="The line of a use case with several (leads).")] = None,
    spec_file: Annotated[
        Path | None,
        typer.Option("--spec", help="Train this spec file instead of a use case.", dir_okay=False),
    ] = None,
    missing_only: Annotated[
        bool, typer.Option(help="With 'all': train only models that have no champion yet.")
    ] = False,
) -> None:
    """Train a model from its spec on the real data and register a new version.

    The specs are the packaged ones (training/specs/) and those in CLM_SPECS_DIR.
    """
    from model_registry.registry import CHAMPION

    settings = TrainingSettings()
    if use_case is not None and spec_file is not None:
        raise typer.BadParameter("name a use case or give --spec FILE, not both")
    if spec_file is not None:
        spec = _load(spec_file)
        _warn_if_shadowed(spec, spec_file, settings)
        _train(spec, settings, as_challenger=False)
        return
    if use_case is None:
        raise typer.BadParameter("name a use case (or 'all'), or give --spec FILE")
    if use_case == "all":
        registry = _registry(settings)
        for spec in _catalogue(settings).values():
            if missing_only and registry.resolve(spec.registered_model, CHAMPION) is not None:
                typer.echo(f"{spec.registered_model}: has a champion, not retrained")
                continue
            _train(spec, settings, as_challenger=False)
        return
    _train(_find_spec(use_case, line, settings), settings, as_challenger=False)


@spec_app.command("check")
def spec_check(
    spec_file: Annotated[
        Path, typer.Argument(help="The spec file (TOML).", dir_okay=False, show_default=False)
    ],
) -> None:
    """Check a spec and its data before training: the data is readable, the ID unique, the target has both
    classes, every column the spec names exists, and no feature column alone predicts the target too well.

    Exits 1 when a check fails (a column whose single-feature ROC AUC is above 0.95 fails unless the spec
    leaves it out or marks it checked with a reason), 2 when the spec or its data cannot be read.
    """
    from training.data import DataError
    from training.spec_check import check_spec

    spec = _load(spec_file)
    try:
        result = check_spec(spec, TrainingSettings().data_dir)
    except DataError as exc:
        _fail(str(exc))
    _print_check(spec_file, result)
    if not result.passed:
        raise typer.Exit(1)


@models_app.command("list")
def list_models() -> None:
    """Every registered model with its versions, aliases and holdout ROC AUC."""
    from training.kinds import KINDS

    headlines = tuple(dict.fromkeys(kind.headline[0] for kind in KINDS.values()))
    registry = _registry(TrainingSettings())
    names = registry.registered_names()
    if not names:
        typer.echo("the registry holds no model yet: run `clm train all`")
    for name in names:
        typer.echo(name)
        for ref in registry.versions(name):
            # The version's headline figure: ROC AUC, or what its kind reports instead (a value model's MAE).
            figure = next((f for f in headlines if f"holdout.{f}" in ref.tags), "roc_auc")
            shown = f"{figure}={ref.tags.get(f'holdout.{figure}', '?')}"
            aliases = ",".join(ref.aliases) or "-"
            typer.echo(
                f"  version {ref.version:<4} {aliases:<22} {shown:<18} {ref.created_at:%Y-%m-%d %H:%M}"
            )


@app.command()
def retrain(
    use_case: Annotated[str, typer.Argument(help="churn, leads, products, diagnosis")],
    line: Annotated[str | None, typer.Option(help="The line of a use case with several (leads).")] = None,
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store",
            help="Train on the records the service scored by id and the outcomes recorded after their score "
            "(CLM_DATABASE_URL), not on the spec's file.",
        ),
    ] = False,
    since: Annotated[
        datetime | None,
        typer.Option(
            help="With --from-store: only records scored at or after this time (UTC unless it says otherwise).",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ] = None,
) -> None:
    """Train a new version and register it as challenger (the first becomes champion): on the current data, or
    with --from-store on what the service saw and what happened after."""
    settings = TrainingSettings()
    spec = _find_spec(use_case, line, settings)
    if since is not None and not from_store:
        raise typer.BadParameter("--since goes with --from-store")
    if from_store:
        _retrain_from_store(spec, settings, since)
        return
    _train(spec, settings, as_challenger=True)


def _retrain_from_store(spec: ModelSpec, settings: TrainingSettings, since: datetime | None) -> None:
    from training import from_store
    from training.data import DataError

    try:
        ref, figures, source = from_store.retrain_from_store(
            spec,
            _registry(settings),
            settings.database_url,
            since=since if since is None or since.tzinfo else since.replace(tzinfo=UTC),
            min_rows=settings.retrain_min_rows,
            min_positives=settings.retrain_min_positives,
        )
    except DataError as exc:
        _fail(str(exc))
    except from_store.NotEnoughRows as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{ref.name} from the store: {source['rows']:,} records scored by id (from {source['scored_from']} to "
        f"{source['scored_until']}) with an outcome recorded after their score, {source['positives']:,} "
        f"positive; {source['fixed_holdout_rows_left_out']:,} more in the fixed holdout, left out"
    )
    typer.echo(
        f"  trained on {source['train_rows']:,}, early stopping on {source['validation_rows']:,}; "
        f"gate rows: {source['gate_rows']}"
    )
    aliases = ", ".join(ref.aliases) or "no alias"
    typer.echo(
        f"{ref.name} version {ref.version} ({aliases}): ROC AUC {figures['roc_auc']:.4f} on the gate rows"
    )
    line = f" --line {spec.line}" if spec.line else ""
    typer.echo(f"judge it against the champion on those rows: clm promote {spec.use_case}{line}")


@app.command()
def promote(
    use_case: Annotated[str, typer.Argument(help="churn, leads, products, diagnosis")],
    line: Annotated[str | None, typer.Option(help="The line of a use case with several (leads).")] = None,
    version: Annotated[int | None, typer.Option(help="The candidate; default: the challenger.")] = None,
    force: Annotated[bool, typer.Option(help="Promote even when the gate refuses (recorded).")] = False,
    max_roc_auc_drop: Annotated[
        float | None, typer.Option(help="Largest ROC AUC drop allowed [CLM_GATE_MAX_ROC_AUC_DROP, 0.005].")
    ] = None,
    max_ece_rise: Annotated[
        float | None, typer.Option(help="Largest calibration error rise [CLM_GATE_MAX_ECE_RISE, 0.01].")
    ] = None,
    max_log_loss_rise: Annotated[
        float | None, typer.Option(help="Largest log loss rise allowed [CLM_GATE_MAX_LOG_LOSS_RISE, 0.01].")
    ] = None,
) -> None:
    """Gate a candidate against the champion on the fixed holdout and make it champion when no worse.

    Exits with status 1 when the gate refuses. The service picks a new champion up on its next poll.
    """
    from training import promotion
    from training.promotion import GateSettings

    settings = TrainingSettings()
    spec = _find_spec(use_case, line, settings)
    margins = GateSettings().margins()
    overrides = {"roc_auc": max_roc_auc_drop, "ece": max_ece_rise, "log_loss": max_log_loss_rise}
    margins.update({figure: margin for figure, margin in overrides.items() if margin is not None})
    registry = _registry(settings)
    try:
        result = promotion.promote(registry, spec, settings.data_dir, margins, version=version, force=force)
    except promotion.PromotionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _print_gate(result)
    if not result.promoted:
        raise typer.Exit(1)


@app.command()
def rollback(
    use_case: Annotated[str, typer.Argument(help="churn, leads, products, diagnosis, or a registered name")],
    line: Annotated[str | None, typer.Option(help="The line of a use case with several (leads).")] = None,
) -> None:
    """Put the previous champion back, as the champion history records it (no gate: it served before)."""
    from training import promotion

    name = _registered_name(use_case, line, TrainingSettings())
    try:
        demoted, restored = promotion.rollback(_registry(TrainingSettings()), name)
    except promotion.PromotionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{name}: champion is version {restored} again (was version {demoted})")


@models_app.command("history")
def models_history(
    use_case: Annotated[str, typer.Argument(help="churn, leads, products, diagnosis, or a registered name")],
    line: Annotated[str | None, typer.Option(help="The line of a use case with several (leads).")] = None,
) -> None:
    """Who was champion when: version, from, until, the command that made it champion, the gate figures."""
    from model_registry.history import champion_history
    from model_registry.registry import CHAMPION

    settings = TrainingSettings()
    registry = _registry(settings)
    name = _registered_name(use_case, line, settings)
    terms = champion_history(registry, name)
    if not terms:
        typer.echo(f"{name}: no champion recorded yet")
        return
    typer.echo(f"{name}: champion history, oldest first")
    header = f"{'version':<8} {'from':<20} {'until':<20} {'action':<15} {'replaced':<9} {'by':<20}"
    typer.echo(f"  {header} gate: candidate vs champion")
    for term in terms:
        until = f"{term.until:%Y-%m-%d %H:%M:%S}" if term.until else "now"
        gate = term.gate.get("figures", {})
        figures = ", ".join(f"{k} {f['candidate']:.4f} vs {f['champion']:.4f}" for k, f in gate.items())
        typer.echo(
            f"  {term.version:<8} {term.since:%Y-%m-%d %H:%M:%S}  {until:<20} {term.action:<15} "
            f"{term.previous or '-'!s:<9} {term.user:<20} {figures or '-'}"
        )
    current = registry.resolve(name, CHAMPION)
    if current is not None and current.version != terms[-1].version:
        typer.echo(f"  note: champion is version {current.version}, moved outside clm (not in this history)")


@value_app.command("summaries")
def value_summaries(
    out: Annotated[Path, typer.Argument(help="The CSV to write (one row per customer).", dir_okay=False)],
    as_of: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="The cut-off: summaries of what happened by then.")
    ],
    line: Annotated[str, typer.Option(help="The value line.")] = "retail",
) -> None:
    """Summarise every customer of a value line's transactions as of a day, in the fields /v1/value/score reads:
    load them with `clm ingest customers --line LINE OUT` to score customers by id."""
    from training.data import DataError
    from training.value import write_summaries

    settings = TrainingSettings()
    spec = _find_spec("value", line, settings)
    try:
        customers = write_summaries(spec, settings.data_dir, as_of.date(), out)
    except DataError as exc:
        _fail(str(exc))
    typer.echo(f"{out}: {customers} customers of line {line} summarised as of {as_of:%Y-%m-%d}")


def _print_check(path: Path, result: SpecCheck) -> None:
    from training.spec_check import LEAK_ROC_AUC

    spec, data = result.spec, result.spec.data
    typer.echo(f"{path}: {spec.key} ({spec.registered_model}, kind {spec.kind})")
    typer.echo(f"data: {data.source}, {result.rows:,} rows, {result.columns} columns")
    typer.echo("  ok      every column the spec names is in the data")
    if result.repeated_rows:
        shown = ", ".join(result.duplicate_ids)
        typer.echo(
            f"  FAILED  ID {data.id_column}: {result.repeated_rows:,} rows share their ID with another"
            f" (e.g. {shown}); set first_row_per_id = true to keep the first row of each"
        )
    else:
        typer.echo(f"  ok      ID {data.id_column} is unique")
    verdict = "ok    " if result.both_classes else "FAILED"
    typer.echo(
        f"  {verdict}  target {data.target_column}: positive rate {result.positive_rate:.2%}"
        f" ({result.positives:,} of {result.rows:,} rows)"
        + ("" if result.both_classes else ": one class only, nothing to learn")
    )
    if result.scores:
        typer.echo(
            f"single-feature ROC AUC on the {result.scored_rows:,} training rows (not the holdout);"
            f" above {LEAK_ROC_AUC} looks like a leak:"
        )
        typer.echo(f"  {'ROC AUC':<7}  {'kind':<11}  column")
        for score in result.scores:
            if score.leak:
                note = "  LEAK? leave it out, or mark it checked with the reason it is a feature"
            elif score.flagged:
                note = f"  checked: {score.checked}"
            else:
                note = ""
            typer.echo(f"  {score.roc_auc:<7.4f}  {score.kind:<11}  {score.column}{note}")
    if result.left_out:
        typer.echo(f"left out, not scored: {', '.join(result.left_out)}")
    leaks = result.leaks
    if leaks:
        listed = ", ".join(f"{s.column} ({s.roc_auc:.4f})" for s in leaks)
        typer.echo(f"result: FAILED, {len(leaks)} column(s) look like leaks: {listed}")
    elif result.passed:
        typer.echo("result: ok")
    else:
        typer.echo("result: FAILED")


def _print_gate(result: promotion.GateResult) -> None:
    rows = int(result.candidate_figures.get("rows", 0))
    if result.champion is None:
        typer.echo(f"{result.name}: no champion to compare with; version {result.candidate} is champion now")
        return
    typer.echo(
        f"{result.name}: version {result.candidate} against champion version {result.champion}"
        f" on the same {rows} rows: {result.rows}"
    )
    typer.echo(f"  {'figure':<10} {'candidate':>10} {'champion':>10} {'worst allowed':>14}")
    for check in result.checks:
        verdict = "ok" if check.passed else "WORSE"
        figures = f"{check.candidate:>10.4f} {check.champion:>10.4f} {check.limit:>14.4f}"
        typer.echo(f"  {check.figure:<10} {figures}  {verdict}")
    if result.passed:
        typer.echo(f"decision: promoted; champion is now version {result.candidate}")
    elif result.forced:
        typer.echo(f"decision: forced; champion is now version {result.candidate}, although the gate refused")
    else:
        typer.echo(f"decision: refused; champion stays version {result.champion}")


def _registered_name(use_case: str, line: str | None, settings: TrainingSettings) -> str:
    if use_case.startswith("clm-"):
        return use_case
    return _find_spec(use_case, line, settings).registered_model


def _fail(message: str) -> NoReturn:
    """A bad spec or unreadable data: the message, and exit status 2 (a usage error, as typer's own)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _load(path: Path) -> ModelSpec:
    from training.spec import SpecError, load_spec

    try:
        return load_spec(path)
    except SpecError as exc:
        _fail(str(exc))


def _catalogue(settings: TrainingSettings) -> dict[Path, ModelSpec]:
    from training.spec import SpecError, spec_files

    try:
        return spec_files(settings.specs_dir)
    except SpecError as exc:
        _fail(str(exc))


def _find_spec(use_case: str, line: str | None, settings: TrainingSettings) -> ModelSpec:
    from training.spec import SpecError, find_spec

    try:
        return find_spec(use_case, line, settings.specs_dir)
    except SpecError as exc:
        _fail(str(exc))
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _warn_if_shadowed(spec: ModelSpec, path: Path, settings: TrainingSettings) -> None:
    """`clm retrain` and `clm promote` find a model's spec by use case and line: when another file declares
    the same registered model, they will use that file, not this one."""
    for other_path, other in _catalogue(settings).items():
        if other.registered_model == spec.registered_model and other_path.resolve() != path.resolve():
            log.warning(
                "%s is also declared by %s: retrain and promote will use that spec",
                spec.registered_model,
                other_path,
            )
