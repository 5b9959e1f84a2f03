"""The record model: every registered version's MLflow pyfunc flavour, scoring API records.

`mlflow.pyfunc.load_model("models:/clm-churn@champion")` gives this model: `predict` takes a data frame of API
records (API field names, any column may be absent) and returns the API's figures as columns, one row per
record (app/bulk/figures.py), from the version's own feature contract, derived fields and metadata. So
`mlflow models serve`, `mlflow.pyfunc.spark_udf` and `clm score file` score records as POST /v1/... does,
with no client re-implementing the contract. The service itself never goes through it: it loads the native
boosters (app/scoring/runtime/).

It is logged as code (MLflow's "models from code": app/bulk/pyfunc_entry.py is stored with the version and
run on load), never as a pickle; the version's bundle (contract, metadata, UBJSON boosters) is its artifact.
Loading it needs this package installed beside MLflow, as serving does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numba
import numpy as np
import pandas as pd
import pydantic
import xgboost as xgb
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import AnyType

from app.bulk.defaults import TOP_N
from app.bulk.figures import Options, output_columns, score_frame
from app.scoring.runtime.scorer import Scorer
from model_registry.bundle import ModelBundle
from model_registry.contract import FeatureContract, has_integer_categories

ENTRY_POINT = Path(__file__).with_name("pyfunc_entry.py")
BUNDLE_ARTIFACT = "bundle"
MODEL_NAME = (
    "name"  # the model_config key naming the registered model (for the scorer's log lines and metrics)
)
# The registry numbers a version after it is logged: inside the model it is unknown. Whoever loads it by name
# knows it (the bulk jobs print it and write it on every row).
UNNUMBERED = 0
ANY = AnyType()  # type: ignore[no-untyped-call]


class RecordModel(PythonModel):
    """The pyfunc model: a Scorer of the version's bundle behind the table figures."""

    def load_context(self, context: PythonModelContext) -> None:
        bundle = ModelBundle.load(Path(context.artifacts[BUNDLE_ARTIFACT]))
        name = str((context.model_config or {}).get(MODEL_NAME, "record-model"))
        # Exact reasons, as the service gives them by default (CLM_EXACT_CONTRIBUTIONS).
        self.scorer = scorer_of(bundle, name, UNNUMBERED, alias="", exact_contributions=True)
        self.scorer.check()  # a version that does not reproduce its stored example never scores

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        params = params or {}
        options = Options(explain=bool(params.get("explain", False)), top_n=int(params.get("top_n", TOP_N)))
        return score_frame(self.scorer, model_input, options)


def scorer_of(
    bundle: ModelBundle, name: str, version: int, *, alias: str, exact_contributions: bool
) -> Scorer:
    return Scorer(
        name=name,
        version=version,
        alias=alias,
        loaded_at=datetime.now(UTC),
        bundle=bundle,
        exact_contributions=exact_contributions,
    )


@dataclass(frozen=True)
class RecordFlavour:
    """What model_registry logs as every version's pyfunc flavour (ModelRegistry(flavour=...)): the code, the
    records' signature and an input example. model_registry never imports app/, so the service hands it over."""

    code: Path = ENTRY_POINT
    bundle_artifact: str = BUNDLE_ARTIFACT
    model_name_key: str = MODEL_NAME

    def signature(self, bundle: ModelBundle) -> ModelSignature:
        scorer = scorer_of(bundle, "signature", UNNUMBERED, alias="", exact_contributions=False)
        outputs = Schema([ColSpec(c.type, c.name, required=False) for c in output_columns(scorer)])
        params = [ParamSpec("explain", "boolean", False)]
        if bundle.metadata.get("use_case") == "products":
            params.append(ParamSpec("top_n", "long", TOP_N))
        return ModelSignature(
            inputs=records_schema(bundle.contract), outputs=outputs, params=ParamSchema(params)
        )

    def input_example(self, bundle: ModelBundle) -> pd.DataFrame:
        """The records the version checks itself on when it loads (a few holdout rows, as clients send them)."""
        records = bundle.metadata.get("check", {}).get("records", [])
        fields = [spec.name for spec in records_schema(bundle.contract).inputs]
        return pd.DataFrame.from_records(records, columns=[f for f in fields if any(f in r for r in records)])

    @property
    def pip_requirements(self) -> list[str]:
        # Named, not inferred: inference starts a subprocess costing seconds per registration. The record
        # model's own code comes from this package (clm-scoring), installed where it loads.
        return [
            f"mlflow=={mlflow.__version__}",
            f"xgboost=={xgb.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}",
            f"numba=={numba.__version__}",
            f"pydantic=={pydantic.VERSION}",
        ]


def records_schema(contract: FeatureContract) -> Schema:
    """The records a version reads, as MLflow's signature types them: text categories as string; numbers, IDs
    and categories written as integers as Any, since MLflow refuses a JSON integer (int64) for a double and the
    API takes either. Every column is optional: an absent one scores as missing. The contract checks values
    (a bad one is the row's `error`), as the API does."""
    kinds: dict[str, DataType | AnyType] = {contract.id_field: ANY}
    for derivation in contract.derived:
        for source in derivation.sources:
            kinds.setdefault(source, DataType.string if derivation.rule == "item_count" else ANY)
    for feature in contract.features:
        text = feature.kind == "categorical" and not has_integer_categories(feature)
        kinds[feature.name] = DataType.string if text else ANY
    return Schema([ColSpec(kind, name, required=False) for name, kind in kinds.items()])
