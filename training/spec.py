"""Declarative model specs: a new model line is a TOML file in `training/specs/`, not new code."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model_registry.derived import Derivation

SPECS_DIR = Path(__file__).parent / "specs"
ROW_NUMBER = "__row__"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeftOut(_Strict):
    column: str
    why: str = Field(
        min_length=10, description="Why the column may not be a feature (leak, post-outcome, ID)."
    )


class DataSpec(_Strict):
    file: str = Field(description="Path below CLM_DATA_DIR.")
    separator: str = ","
    id_column: str = Field(
        description=f"The column holding the record's ID, or {ROW_NUMBER!r} (0-based row)."
    )
    id_field: str | None = Field(default=None, description="The API name of the ID; default: the column's.")
    target_column: str
    positive_values: list[str] = Field(default_factory=list, description="Target values that are positive.")
    positive_min: float | None = Field(
        default=None, description="For a numeric target instead: positive when the value is at least this."
    )
    missing_values: list[str] = Field(default_factory=list, description="Values that mean 'missing'.")
    first_row_per_id: bool = False
    categorical: list[str] = Field(
        default_factory=list, description="Numeric-looking columns to treat as categories."
    )
    leave_out: list[LeftOut] = Field(default_factory=list)
    derived: list[Derivation] = Field(
        default_factory=list,
        description="Fields derived from others; stored in the contract, applied in serving.",
    )

    @model_validator(mode="after")
    def _one_target_rule(self) -> DataSpec:
        if bool(self.positive_values) == (self.positive_min is not None):
            raise ValueError("give either positive_values or positive_min")
        return self


class TrainingSpec(_Strict):
    max_depth: int = 4
    learning_rate: float = 0.05
    max_rounds: int = 2000
    early_stopping_rounds: int = 100
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    validation_share: int = Field(default=5, description="1 in N training rows is held for early stopping.")
    min_category_count: int = Field(default=5, description="Rarer categories score as missing.")
    seed: int = 7


class RiskSpec(_Strict):
    """Churn risk levels: probability thresholds, stored with the model version."""

    high: float = Field(gt=0, lt=1)
    medium: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> RiskSpec:
        if self.medium >= self.high:
            raise ValueError("risk.medium must be below risk.high")
        return self


class GradeSpec(_Strict):
    """Lead grades: the share of validation leads in each grade, best first (A, B, C; D takes the rest)."""

    shares: dict[str, float] = Field(default_factory=lambda: {"A": 0.1, "B": 0.2, "C": 0.3})


class ModelSpec(_Strict):
    use_case: str = Field(description="churn, leads, products, diagnosis")
    line: str | None = Field(default=None, description="For use cases with several lines (leads).")
    registered_model: str
    kind: Literal["binary", "products", "diagnosis"] = "binary"
    description: str
    data: DataSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    risk: RiskSpec | None = None
    grades: GradeSpec | None = None
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Settings of the kind (products, segments)."
    )

    @property
    def key(self) -> str:
        return f"{self.use_case}-{self.line}" if self.line else self.use_case


def load_spec(path: Path) -> ModelSpec:
    with path.open("rb") as handle:
        return ModelSpec.model_validate(tomllib.load(handle))


def all_specs(specs_dir: Path = SPECS_DIR) -> list[ModelSpec]:
    return [load_spec(p) for p in sorted(specs_dir.glob("*.toml"))]


def find_spec(use_case: str, line: str | None = None, specs_dir: Path = SPECS_DIR) -> ModelSpec:
    specs = [s for s in all_specs(specs_dir) if s.use_case == use_case]
    if not specs:
        known = sorted({s.use_case for s in all_specs(specs_dir)})
        raise LookupError(f"no spec for use case {use_case!r}; known: {', '.join(known)}")
    if line is None and len(specs) == 1:
        return specs[0]
    for spec in specs:
        if spec.line == line:
            return spec
    lines = ", ".join(sorted(str(s.line) for s in specs))
    raise LookupError(f"use case {use_case!r} has lines {lines}; pick one with --line")
