"""Declarative model specs: a new model line is a TOML file (training/specs/, CLM_SPECS_DIR), not code."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from model_registry.derived import Derivation
from model_registry.profile_fields import ProfileFields

SPECS_DIR = Path(__file__).parent / "specs"
ROW_NUMBER = "__row__"
PARQUET_SUFFIX = ".parquet"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeftOut(_Strict):
    column: str
    why: str = Field(
        min_length=10, description="Why the column may not be a feature (leak, post-outcome, ID)."
    )


class CheckedColumn(_Strict):
    column: str
    why: str = Field(
        min_length=10,
        description="Why a column that predicts the target almost alone is a feature all the same (not a leak).",
    )


class DataSpec(_Strict):
    """Where the rows come from (a CSV or Parquet file, or a SQL query) and how to read their columns."""

    file: str | None = Field(
        default=None,
        description="A CSV file, or a Parquet file (suffix .parquet); a relative path is below CLM_DATA_DIR.",
    )
    sql: str | None = Field(
        default=None, description="Instead of a file: a SQL query whose rows are the data."
    )
    url_env: str | None = Field(
        default=None,
        description="With sql: the environment variable holding the database's SQLAlchemy URL (no password in a spec).",
    )
    separator: str = Field(default=",", description="CSV files only.")
    id_column: str = Field(
        description=f"The column holding the record's ID, or {ROW_NUMBER!r} (0-based row of a file)."
    )
    id_field: str | None = Field(default=None, description="The API name of the ID; default: the column's.")
    target_column: str | None = Field(
        default=None,
        description="The 0/1 target; every kind but value needs one (value models transactions).",
    )
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
    checked: list[CheckedColumn] = Field(
        default_factory=list,
        description="Columns `clm spec check` flags as likely leaks that were checked and are features all the same.",
    )
    derived: list[Derivation] = Field(
        default_factory=list,
        description="Fields derived from others; stored in the contract, applied in serving.",
    )

    @model_validator(mode="after")
    def _one_target_rule(self) -> DataSpec:
        if self.target_column is None:
            if self.positive_values or self.positive_min is not None:
                raise ValueError("positive_values and positive_min need a target_column")
        elif bool(self.positive_values) == (self.positive_min is not None):
            raise ValueError("give either positive_values or positive_min")
        return self

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.file is None) == (self.sql is None):
            raise ValueError(
                "give the data as exactly one of `file` (CSV or Parquet) and `sql` (with `url_env`)"
            )
        if self.sql is not None:
            if not self.url_env:
                raise ValueError("`sql` needs `url_env`: the environment variable holding the database URL")
            if self.id_column == ROW_NUMBER:
                raise ValueError(
                    f"a query's rows come in no fixed order: name an ID column, not {ROW_NUMBER!r}"
                )
        elif self.url_env is not None:
            raise ValueError("`url_env` goes with `sql`, not with `file`")
        if "separator" in self.model_fields_set and not self.is_csv:
            raise ValueError("`separator` applies to CSV files only")
        return self

    @model_validator(mode="after")
    def _checked_is_not_left_out(self) -> DataSpec:
        both = {c.column for c in self.checked} & {c.column for c in self.leave_out}
        if both:
            raise ValueError(f"{sorted(both)} both left out and checked as features: pick one")
        return self

    @property
    def is_csv(self) -> bool:
        return self.file is not None and not self.file.endswith(PARQUET_SUFFIX)

    @property
    def source(self) -> str:
        """The data's origin, for messages: the file, or the query's database variable."""
        return self.file if self.file is not None else f"the query on ${self.url_env}"


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
    use_case: str = Field(description="churn, leads, products, diagnosis, value")
    line: str | None = Field(
        default=None,
        description="For use cases with several lines; the spec without a line is the use case's default.",
    )
    registered_model: str
    kind: str = Field(
        default="binary", description="A kind of training.kinds.KINDS: binary, products, diagnosis, value."
    )
    description: str
    data: DataSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    risk: RiskSpec | None = None
    grades: GradeSpec | None = None
    profile: ProfileFields | None = Field(
        default=None,
        description="A churn line: the fields the customer profile's lifecycle rules read, value thresholds.",
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Settings of the kind (products, segments)."
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        # Imported here, not at the top: the kinds import their trainers, which import this module.
        from training.kinds import KINDS

        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
        return kind

    @model_validator(mode="after")
    def _target_if_the_kind_has_one(self) -> ModelSpec:
        from training.kinds import KINDS

        if KINDS[self.kind].needs_target and self.data.target_column is None:
            raise ValueError(f"kind {self.kind!r} needs data.target_column (and its positive values)")
        return self

    @property
    def key(self) -> str:
        return f"{self.use_case}-{self.line}" if self.line else self.use_case


class SpecError(Exception):
    """A spec file cannot be read, does not validate, or clashes with another spec."""


def load_spec(path: Path) -> ModelSpec:
    try:
        with path.open("rb") as handle:
            return ModelSpec.model_validate(tomllib.load(handle))
    except OSError as exc:
        raise SpecError(f"cannot read the spec {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        raise SpecError(f"{path} is not a valid spec:\n{exc}") from exc


def spec_files(extra_dir: Path | None = None) -> dict[Path, ModelSpec]:
    """Every spec by its file: the packaged ones, then those of `extra_dir` (CLM_SPECS_DIR). A registered model
    or a (use case, line) declared twice is an error naming both files: which one wins would be a guess."""
    paths = sorted(SPECS_DIR.glob("*.toml"))
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise SpecError(f"the specs folder {extra_dir} (CLM_SPECS_DIR) is not a directory")
        paths += sorted(extra_dir.glob("*.toml"))
    specs: dict[Path, ModelSpec] = {}
    by_name: dict[str, Path] = {}
    by_line: dict[tuple[str, str | None], Path] = {}
    for path in paths:
        spec = load_spec(path)
        line = (spec.use_case, spec.line)
        if spec.registered_model in by_name:
            raise SpecError(
                f"{by_name[spec.registered_model]} and {path} both declare {spec.registered_model!r}"
            )
        if line in by_line:
            what = f"line {spec.line!r}" if spec.line else "the default line"
            raise SpecError(f"{by_line[line]} and {path} both declare {what} of use case {spec.use_case!r}")
        by_name[spec.registered_model], by_line[line] = path, path
        specs[path] = spec
    return specs


def all_specs(extra_dir: Path | None = None) -> list[ModelSpec]:
    return list(spec_files(extra_dir).values())


def find_spec(use_case: str, line: str | None = None, extra_dir: Path | None = None) -> ModelSpec:
    """The spec of a use case's line. Without a line: the use case's default line (its spec without `line`),
    or its only spec; a use case with several lines and no default (leads) needs the line named."""
    known = all_specs(extra_dir)
    specs = [s for s in known if s.use_case == use_case]
    if not specs:
        use_cases = sorted({s.use_case for s in known})
        raise LookupError(f"no spec for use case {use_case!r}; known: {', '.join(use_cases)}")
    for spec in specs:
        if spec.line == line:
            return spec
    if line is None and len(specs) == 1:
        return specs[0]
    lines = ", ".join(sorted(s.line or "(default: no --line)" for s in specs))
    raise LookupError(f"use case {use_case!r} has lines {lines}; pick one with --line")
