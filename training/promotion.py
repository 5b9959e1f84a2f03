"""Champion and challenger: the promotion gate, promotion and rollback.

The gate loads the candidate and the champion from the registry and scores the same fixed holdout rows
(EVALUATION.md) through each version's own contract and boosters, as serving does; it promotes only when the
candidate is no worse than the champion by a margin on ROC AUC (higher is better) and on calibration: expected
calibration error and log loss (lower is better). The decision and its figures are tagged on the candidate
version and written to the champion history (model_registry.history).

How a kind's holdout is scored is the kind's business: its `holdout_figures` in training.kinds.KINDS, a
function `(spec, data_dir, bundle) -> figures` whose figures hold at least the kind's `gate_figures` (roc_auc, ece
and log_loss for the probability kinds; a value model's purchase error and revenue capture).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model_registry.bundle import GATE_ROWS_FILE
from model_registry.history import (
    FORCED_PROMOTE,
    PROMOTE,
    ROLLBACK,
    champion_history,
    move_champion,
    rollback_target,
)
from model_registry.registry import CHALLENGER, CHAMPION, ModelRegistry, VersionRef
from training.binary import figures_on
from training.kinds import kind_of
from training.spec import ModelSpec

# The gate's figures and which way is better.
HIGHER_IS_BETTER = {
    "roc_auc": True,
    "ece": False,
    "log_loss": False,
    "purchases_mae": False,
    "top_decile_capture": True,
}
FIXED_HOLDOUT = "the fixed holdout of EVALUATION.md"


class PromotionError(Exception):
    """A promote or rollback command cannot do what it was asked (no challenger, nothing to roll back to, ...)."""


class GateSettings(BaseSettings):
    """How much worse than the champion a candidate may be and still pass (CLM_GATE_* variables)."""

    model_config = SettingsConfigDict(env_prefix="CLM_GATE_", extra="ignore")

    max_roc_auc_drop: float = Field(default=0.005, ge=0, description="Largest holdout ROC AUC drop allowed.")
    max_ece_rise: float = Field(default=0.01, ge=0, description="Largest rise in expected calibration error.")
    max_log_loss_rise: float = Field(default=0.01, ge=0, description="Largest rise in holdout log loss.")
    max_purchases_mae_rise: float = Field(
        default=0.01,
        ge=0,
        description="Value models: largest rise in holdout purchases' mean absolute error.",
    )
    max_capture_drop: float = Field(
        default=0.005, ge=0, description="Value models: largest drop in top-decile holdout revenue capture."
    )

    def margins(self) -> dict[str, float]:
        """Every figure's margin; the gate compares those of the model's kind (training.kinds.Kind)."""
        return {
            "roc_auc": self.max_roc_auc_drop,
            "ece": self.max_ece_rise,
            "log_loss": self.max_log_loss_rise,
            "purchases_mae": self.max_purchases_mae_rise,
            "top_decile_capture": self.max_capture_drop,
        }


@dataclass(frozen=True)
class GateCheck:
    figure: str
    candidate: float
    champion: float
    margin: float

    @property
    def limit(self) -> float:
        """The worst value the candidate may have."""
        if HIGHER_IS_BETTER[self.figure]:
            return self.champion - self.margin
        return self.champion + self.margin

    @property
    def passed(self) -> bool:
        if HIGHER_IS_BETTER[self.figure]:
            return self.candidate >= self.limit
        return self.candidate <= self.limit


@dataclass(frozen=True)
class GateResult:
    name: str
    candidate: int
    champion: int | None
    candidate_figures: dict[str, float]
    champion_figures: dict[str, float]
    checks: list[GateCheck]
    forced: bool
    rows: str = FIXED_HOLDOUT  # what both versions were scored on

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def promoted(self) -> bool:
        return self.passed or self.forced

    @property
    def decision(self) -> str:
        if self.passed:
            return "promoted"
        return "forced" if self.forced else "refused"

    @property
    def reasons(self) -> list[str]:
        return [
            f"{c.figure} {c.candidate:.4f} is worse than the allowed {c.limit:.4f} "
            f"(champion {c.champion:.4f}, margin {c.margin})"
            for c in self.checks
            if not c.passed
        ]

    def summary(self) -> dict[str, Any]:
        """What the history keeps of the decision."""
        return {
            "decision": self.decision,
            "champion_version": self.champion,
            "rows": self.rows,
            "figures": {
                c.figure: {
                    "candidate": round(c.candidate, 6),
                    "champion": round(c.champion, 6),
                    "margin": c.margin,
                }
                for c in self.checks
            },
        }

    def tags(self, at: datetime) -> dict[str, Any]:
        """The decision as version tags: flat keys, so the MLflow UI can show and search them."""
        tags: dict[str, Any] = {
            "gate.decision": self.decision,
            "gate.at": at.isoformat(),
            "gate.champion_version": self.champion if self.champion is not None else "none",
            "gate.rows": self.rows,
            "gate.reasons": "; ".join(self.reasons) or "none",
        }
        for check in self.checks:
            tags[f"gate.{check.figure}.candidate"] = round(check.candidate, 6)
            tags[f"gate.{check.figure}.champion"] = round(check.champion, 6)
            tags[f"gate.{check.figure}.margin"] = check.margin
        return tags


def holdout_figures(
    registry: ModelRegistry, spec: ModelSpec, data_dir: Path, version: int
) -> dict[str, float]:
    """A registered version's holdout figures, computed now from its artifacts in the registry."""
    bundle = registry.load(spec.registered_model, version, nthread=2)
    return kind_of(spec).holdout_figures(spec, data_dir, bundle)


def evaluate_gate(
    registry: ModelRegistry,
    spec: ModelSpec,
    data_dir: Path,
    candidate: int,
    margins: dict[str, float],
    *,
    force: bool = False,
) -> GateResult:
    """Score candidate and champion on the same rows and compare them figure by figure: the fixed holdout, or,
    for a candidate trained on the service's own records, the newest outcomes it was not trained on (its gate
    rows, stored with it)."""
    name = spec.registered_model
    champion = registry.resolve(name, CHAMPION)
    bundle = registry.load(name, candidate, nthread=2)
    gate_rows = bundle.documents.get(GATE_ROWS_FILE)
    if gate_rows is None:
        rows = FIXED_HOLDOUT
        candidate_figures = kind_of(spec).holdout_figures(spec, data_dir, bundle)
        champion_figures = holdout_figures(registry, spec, data_dir, champion.version) if champion else {}
    else:
        rows = gate_rows["description"]
        candidate_figures = figures_on(bundle, gate_rows["records"], gate_rows["targets"])
        champion_figures = (
            figures_on(
                registry.load(name, champion.version, nthread=2), gate_rows["records"], gate_rows["targets"]
            )
            if champion
            else {}
        )
    checks = []
    compared = kind_of(spec).gate_figures
    if champion is not None:
        for figure, margin in margins.items():
            if figure not in compared:
                continue
            if figure not in candidate_figures or figure not in champion_figures:
                raise PromotionError(f"the holdout evaluation of kind {spec.kind!r} gives no {figure}")
            checks.append(GateCheck(figure, candidate_figures[figure], champion_figures[figure], margin))
    return GateResult(
        name=name,
        candidate=candidate,
        champion=champion.version if champion else None,
        candidate_figures=candidate_figures,
        champion_figures=champion_figures,
        checks=checks,
        forced=force,
        rows=rows,
    )


def promote(
    registry: ModelRegistry,
    spec: ModelSpec,
    data_dir: Path,
    margins: dict[str, float],
    *,
    version: int | None = None,
    force: bool = False,
) -> GateResult:
    """Gate a candidate (the challenger unless a version is named) and make it champion when it passes or is
    forced. The decision is tagged on the candidate either way; a promoted challenger stops being one."""
    name = spec.registered_model
    candidate = _candidate(registry, name, version)
    champion = registry.resolve(name, CHAMPION)
    if champion is not None and champion.version == candidate.version:
        raise PromotionError(f"{name} version {candidate.version} is already champion")
    result = evaluate_gate(registry, spec, data_dir, candidate.version, margins, force=force)
    registry.set_version_tags(name, candidate.version, result.tags(datetime.now(UTC)))
    if result.promoted:
        action = PROMOTE if result.passed else FORCED_PROMOTE
        move_champion(registry, name, candidate.version, action=action, gate=result.summary())
        if CHALLENGER in candidate.aliases:
            registry.delete_alias(name, CHALLENGER)
    return result


def rollback(registry: ModelRegistry, name: str) -> tuple[int, int]:
    """Put the previous champion back (no gate: it served before). Returns (demoted, restored) versions."""
    current = registry.resolve(name, CHAMPION)
    if current is None:
        raise PromotionError(f"{name} has no champion")
    target = rollback_target(champion_history(registry, name), current.version)
    if target is None:
        raise PromotionError(f"{name}: the history holds no champion before version {current.version}")
    move_champion(registry, name, target, action=ROLLBACK)
    return current.version, target


def _candidate(registry: ModelRegistry, name: str, version: int | None) -> VersionRef:
    if version is None:
        challenger = registry.resolve(name, CHALLENGER)
        if challenger is None:
            raise PromotionError(f"{name} has no challenger: run `clm retrain` or name a --version")
        return challenger
    try:
        return registry.get_version(name, version)
    except MlflowException as exc:
        raise PromotionError(f"{name} has no version {version}") from exc
