"""A loaded version scoring a table of API records: the API's figures as columns, one row per record.

The figures come from the very use-case code the service answers with (app/scoring/use_cases/), so a record
scores the same over HTTP, in a file, on Spark and through MLflow's pyfunc. What differs is what a bad record
does: the API refuses the whole request (422), a table keeps going and names the reason in the row's `error`
column, with every figure null.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from app.bulk.defaults import ERROR_COLUMN, TOP_N
from app.errors import InvalidRecords
from app.scoring.runtime.scorer import Scorer
from app.scoring.use_cases.churn import CHURN, score_customers
from app.scoring.use_cases.diagnosis import DIAGNOSIS, diagnose_listings
from app.scoring.use_cases.leads import LEADS, score_leads
from app.scoring.use_cases.products import PRODUCTS, match_products
from training.data import frame_records

ColumnType = Literal["string", "double", "long"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType


@dataclass(frozen=True)
class Options:
    explain: bool = False  # top_factors (reasons) with every figure; the API's `explain`
    top_n: int = TOP_N  # products only: offers listed in `recommendations`


# (scorer, records, options) -> one result per record, in order, as the API returns them
Results = Callable[[Scorer, list[dict[str, Any]], Options], list[dict[str, Any]]]


@dataclass(frozen=True)
class Figures:
    """What a use case's table holds: its columns for a version, and its results (from the use case)."""

    columns: Callable[[Scorer], list[Column]]
    results: Results
    # The API's name for the records, as the use case names a bad field: customers[3].tenure
    records_field: str


def _churn_columns(_: Scorer) -> list[Column]:
    return [
        Column("customer_id", "string"),
        Column("churn_probability", "double"),
        Column("risk_level", "string"),
        Column("top_factors", "string"),
    ]


def _lead_columns(scorer: Scorer) -> list[Column]:
    return [
        Column(scorer.id_field, "string"),
        Column("conversion_probability", "double"),
        Column("score", "long"),
        Column("grade", "string"),
        Column("top_factors", "string"),
    ]


def _product_columns(scorer: Scorer) -> list[Column]:
    products = scorer.catalogue.names
    return [
        Column("customer_id", "string"),
        *(Column(propensity_column(product), "double") for product in products),
        Column("recommendations", "string"),
    ]


def propensity_column(product: str) -> str:
    """A product's propensity, null where the customer may not be offered it (owns it, or is not eligible)."""
    return f"{product}_propensity"


def _product_results(
    scorer: Scorer, customers: list[dict[str, Any]], options: Options
) -> list[dict[str, Any]]:
    """Every product the customer may be offered, for its propensity column; `recommendations` cut to top_n as
    the API cuts them."""
    every_offer = len(scorer.catalogue.products)
    results = match_products(scorer, customers, every_offer, options.explain)
    for result in results:
        offers = result.pop("recommendations")
        for offer in offers:
            result[propensity_column(offer["product"])] = offer["propensity"]
        result["recommendations"] = offers[: options.top_n]
    return results


def _diagnosis_columns(_: Scorer) -> list[Column]:
    return [
        Column("product_id", "string"),
        Column("segment", "string"),
        Column("segment_fallback", "string"),
        Column("effect_probability", "double"),
        Column("percentile", "double"),
        Column("gaps", "string"),
    ]


# One entry per use case (a spec's `use_case`), as app/scoring/use_cases/registry.py lists the routes.
FIGURES: dict[str, Figures] = {
    CHURN.name: Figures(
        _churn_columns, lambda s, records, o: score_customers(s, records, o.explain), CHURN.records_field
    ),
    LEADS.name: Figures(
        _lead_columns, lambda s, records, o: score_leads(s, records, o.explain), LEADS.records_field
    ),
    PRODUCTS.name: Figures(_product_columns, _product_results, PRODUCTS.records_field),
    DIAGNOSIS.name: Figures(
        _diagnosis_columns, lambda s, records, _: diagnose_listings(s, records), DIAGNOSIS.records_field
    ),
}


def figures_of(scorer: Scorer) -> Figures:
    use_case = scorer.metadata.get("use_case", "")
    figures = FIGURES.get(use_case)
    if figures is None:
        raise ValueError(f"{scorer.name} is a {use_case!r} model: no table of figures is defined for it")
    return figures


def output_columns(scorer: Scorer) -> list[Column]:
    """The table's columns: the use case's figures, then `error` (null for a record that scored)."""
    return [*figures_of(scorer).columns(scorer), Column(ERROR_COLUMN, "string")]


def score_frame(scorer: Scorer, frame: pd.DataFrame, options: Options) -> pd.DataFrame:
    """One output row per input row, in order. Fields the version does not read are ignored and absent ones
    score as missing, as in the API; a record the API would refuse gets its reasons in `error`."""
    figures = figures_of(scorer)
    records = frame_records(frame)
    rejected: dict[int, str] = {}
    try:
        results = figures.results(scorer, records, options)
    except InvalidRecords as exc:  # the use case names every bad field: score the other records
        rejected = _reasons_by_record(exc.details, figures.records_field)
        good = [records[row] for row in range(len(records)) if row not in rejected]
        results = figures.results(scorer, good, options) if good else []
    columns = output_columns(scorer)
    id_column = columns[0].name
    scored = iter(results)
    rows = []
    for row, record in enumerate(records):
        reasons = rejected.get(row)
        if reasons is None:
            cells = {name: _cell(value) for name, value in next(scored).items()}
        else:
            cells = {ERROR_COLUMN: reasons}
        identifier = record.get(scorer.id_field)
        cells[id_column] = None if identifier is None else str(identifier)  # one type: text or numbers sent
        rows.append(cells)
    table = pd.DataFrame.from_records(rows, columns=[c.name for c in columns], index=frame.index)
    table = table.astype({c.name: _PANDAS_TYPES[c.type] for c in columns})
    text = [c.name for c in columns if c.type == "string"]
    table[text] = table[text].where(table[text].notna(), None)  # null text is None, as in the API's JSON
    return table


def _reasons_by_record(details: list[dict[str, Any]], records_field: str) -> dict[int, str]:
    """The bad fields of InvalidRecords grouped by record: {3: "tenure: must be a number or null; ..."}."""
    pattern = re.compile(rf"^{re.escape(records_field)}\[(\d+)\]\.?(.*)$")
    reasons: dict[int, list[str]] = {}
    for detail in details:
        match = pattern.match(detail["path"])
        if match is None:  # not one record's field: nothing a row of a table can cause
            raise InvalidRecords(detail["message"], [detail])
        reasons.setdefault(int(match.group(1)), []).append(f"{match.group(2)}: {detail['message']}")
    return {row: "; ".join(found) for row, found in reasons.items()}


def _cell(value: Any) -> Any:
    """Lists and objects (reasons, offers, gaps) as JSON text: a table's cell holds one value."""
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return value


_PANDAS_TYPES: dict[ColumnType, str] = {"string": "object", "double": "float64", "long": "Int64"}
