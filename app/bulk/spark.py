"""`clm score spark`: a Parquet table of records scored on Apache Spark with one registered version.

The version's record model (app/bulk/record_model.py) runs in every executor through
`mlflow.pyfunc.spark_udf`, so a record scores as POST /v1/... scores it. The job reads the table, gives the
record model the version's fields (absent ones as null, IDs and categories as text, numbers as numbers),
and writes Parquet: the figures, the model and its version on every row; rows the API would refuse go to a
rejects table with their reasons. Locally: `clm score spark IN OUT --model clm-churn`; on a cluster the same
file is the job: `spark-submit ... app/bulk/spark.py IN OUT --model clm-churn` (README).

PySpark is an optional extra (`pip install 'clm-scoring[spark]'`): this module imports it only when a job runs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.bulk.defaults import ERROR_COLUMN, TOP_N

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from model_registry.contract import FeatureContract

SCORES = "__scores"


@dataclass(frozen=True)
class SparkReport:
    rows: int
    scored: int
    rejected: int


def score_table(
    spark: SparkSession,
    source: str,
    out: str,
    rejects: str,
    *,
    model_uri: str,
    name: str,
    version: int,
    contract: FeatureContract,
    explain: bool,
    top_n: int = TOP_N,
) -> SparkReport:
    """Score the Parquet table `source` into `out`; refused rows (the input and `error`) into `rejects`."""
    import mlflow
    from pyspark import StorageLevel
    from pyspark.sql import functions as sf

    from model_registry.contract import api_name

    table = spark.read.parquet(source)
    table = table.toDF(*[api_name(column) for column in table.columns])
    params: dict[str, Any] = {"explain": explain}
    signature = mlflow.models.get_model_info(model_uri).signature
    if (
        signature is not None
        and signature.params is not None
        and "top_n" in {p.name for p in signature.params.params}
    ):
        params["top_n"] = top_n
    # env_manager local: the executors' Python environment is the job's (this package installed in it).
    record_model = mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local", params=params)
    scored = table.withColumn(SCORES, record_model(sf.struct(*_record_columns(table, contract))))
    # Kept while both outputs are written, so every record is scored once.
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        figures = [f"{SCORES}.{c}" for c in scored.select(f"{SCORES}.*").columns if c != ERROR_COLUMN]
        if not explain:
            figures = [c for c in figures if not c.endswith(".top_factors")]
        good = scored.where(sf.col(f"{SCORES}.{ERROR_COLUMN}").isNull())
        good.select(*figures, sf.lit(name).alias("model"), sf.lit(version).alias("version")).write.mode(
            "overwrite"
        ).parquet(out)
        refused = scored.where(sf.col(f"{SCORES}.{ERROR_COLUMN}").isNotNull())
        refused.select(sf.col(f"{SCORES}.{ERROR_COLUMN}").alias("reason"), *table.columns).write.mode(
            "overwrite"
        ).parquet(rejects)
        rows, rejected = scored.count(), refused.count()
    finally:
        scored.unpersist()
    return SparkReport(rows=rows, scored=rows - rejected, rejected=rejected)


def _record_columns(table: DataFrame, contract: FeatureContract) -> list[Column]:
    """The fields the version reads, as the record model takes them: the ID and categories as text (an
    integer category "3" is the text "3", as in training), numbers as numbers (text that is no number is null),
    and a field the table lacks as null."""
    from pyspark.sql import functions as sf
    from pyspark.sql.types import NumericType

    types = {field.name: field.dataType for field in table.schema.fields}
    wanted: dict[str, str] = {contract.id_field: "string"}
    for derivation in contract.derived:
        for source in derivation.sources:
            wanted.setdefault(source, "string" if derivation.rule == "item_count" else "double")
    for feature in contract.features:
        wanted[feature.name] = "double" if feature.kind == "numeric" else "string"
    columns = []
    for name, kind in wanted.items():
        if name not in types:
            columns.append(sf.lit(None).cast(kind).alias(name))
        elif kind == "double" and not isinstance(types[name], NumericType):
            columns.append(sf.col(name).try_cast("double").alias(name))
        elif kind == "string":
            columns.append(sf.col(name).cast("string").alias(name))
        else:
            columns.append(sf.col(name))
    return columns


def spark_command(
    source: Annotated[str, typer.Argument(help="A Parquet table of records (path or URI), API field names.")],
    out: Annotated[str, typer.Argument(help="Where the scores go: a Parquet table (path or URI).")],
    model: Annotated[
        str,
        typer.Option(help="NAME, NAME@ALIAS or NAME/VERSION; NAME alone is the served alias (CLM_ALIAS)."),
    ],
    explain: Annotated[bool, typer.Option(help="Add top_factors (reasons) to every row.")] = False,
    top_n: Annotated[int, typer.Option(min=1, help="Products: offers listed in `recommendations`.")] = TOP_N,
    rejects: Annotated[
        str | None, typer.Option(help="The refused rows with their reasons (Parquet); default: OUT_rejects.")
    ] = None,
    master: Annotated[
        str | None,
        typer.Option(help="Spark master for a local run, e.g. local[2]; spark-submit's own when it submits."),
    ] = None,
) -> None:
    """Score a Parquet table on Apache Spark with one registered version (mlflow.pyfunc.spark_udf of its record
    model): the ID, the API's figures, the model and its version on every row."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        typer.echo("PySpark is not installed: pip install 'clm-scoring[spark]'", err=True)
        raise typer.Exit(1) from exc
    # MLflow and the registry are imported here, not at the top: `clm` starts in well under a second without them.
    import mlflow

    from app.bulk.model_ref import ModelRef, UnknownVersion
    from app.settings import Settings
    from model_registry.registry import ModelRegistry

    settings = Settings()
    try:
        ref = ModelRef.parse(model, settings.alias)
        registry = ModelRegistry(settings.mlflow_tracking_uri, str(settings.artifact_root))
        version = ref.resolve(registry)
    except (ValueError, UnknownVersion) as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    contract = registry.load(ref.name, version).contract
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)  # where spark_udf finds the version
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    # A local run's Python workers run this interpreter (this package and its dependencies installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(f"clm score {ref.name} version {version}")
    spark = (builder.master(master) if master else builder).getOrCreate()
    try:
        report = score_table(
            spark,
            source,
            out,
            rejects or f"{out.rstrip('/')}_rejects",
            model_uri=ref.uri(version),
            name=ref.name,
            version=version,
            contract=contract,
            explain=explain,
            top_n=top_n,
        )
    finally:
        spark.stop()
    typer.echo(
        f"{source}: {report.rows} rows, {report.scored} scored, {report.rejected} refused, "
        f"by {ref.name} version {version} -> {out}"
    )


if __name__ == "__main__":  # spark-submit app/bulk/spark.py SOURCE OUT --model NAME[@ALIAS|/VERSION]
    typer.run(spark_command)
