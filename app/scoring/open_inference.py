"""Tensors in, records out, and back: what the Open Inference Protocol's routes add to the scoring pipeline.

A served model's inputs are its record fields, one tensor each (the columns of MLServer's tabular `pd` content
type); its outputs are a use case's figures per record. Records built from the tensors go through the very
pipeline the /v1 routes run (checks, encoding, scoring, prediction log, shadow scoring), so the two protocols
never score differently.

Outputs, per use case (all of shape [n]):
- churn: `probability` (FP64, the churn probability) and `risk_level` (BYTES);
- leads: `probability` (FP64, the conversion probability), `score` (INT64) and `grade` (BYTES);
- diagnosis: `probability` (FP64, the effect probability);
- products: one FP64 output per product of the version's catalogue, named by the product: its propensity where
  the product may be offered to the customer, -1 where it may not (owned already, or not eligible).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import Any

from app.errors import ServiceError
from app.schemas.inference import InferenceRequest, MetadataTensor, RequestInput, ResponseOutput
from app.scoring.runtime.scorer import Scorer
from app.scoring.runtime.served import record_schema_of
from app.scoring.use_cases.base import Record, Result

NOT_OFFERED = -1.0
# Parameters that say the data is elsewhere than in the JSON body (binary data, shared memory): not served.
_DATA_ELSEWHERE = ("binary_data_size", "shared_memory_region")
_TABULAR = "pd"
_NUMBER_TYPES = (int, float)
_FLOAT_TYPES = ("FP32", "FP64")


class BadTensor(ServiceError):
    """A request the protocol's own rules refuse (shapes, data types, parameters): its 400."""

    status_code, code = 400, "bad_tensor"


@dataclass(frozen=True)
class Output:
    name: str
    datatype: str
    values: Callable[[Scorer, list[Result]], list[Any]]


def _column(key: str) -> Callable[[Scorer, list[Result]], list[Any]]:
    return lambda _, results: [result[key] for result in results]


_OUTPUTS: dict[str, tuple[Output, ...]] = {
    "churn": (
        Output("probability", "FP64", _column("churn_probability")),
        Output("risk_level", "BYTES", _column("risk_level")),
    ),
    "leads": (
        Output("probability", "FP64", _column("conversion_probability")),
        Output("score", "INT64", _column("score")),
        Output("grade", "BYTES", _column("grade")),
    ),
    "diagnosis": (Output("probability", "FP64", _column("effect_probability")),),
}


def speaks(use_case: str) -> bool:
    """Whether the use case's models are served through the protocol: one probability (or one per product) per
    record of fields. A value model takes a customer's summary or transactions and answers several figures, so
    it keeps its own route (POST /v1/value/score)."""
    return use_case == "products" or use_case in _OUTPUTS


def outputs_of(use_case: str, scorer: Scorer) -> tuple[Output, ...]:
    if use_case == "products":
        offers = _OffersByCustomer()
        return tuple(
            Output(product.name, "FP64", partial(offers.propensities, product.name))
            for product in scorer.catalogue.products
        )
    return _OUTPUTS[use_case]


class _OffersByCustomer:
    """Each customer's offers as {product: propensity}, made once for all the product outputs of a response
    (each output made them again: products x customers dicts, where customers do)."""

    def __init__(self) -> None:
        self._results: list[Result] | None = None
        self._offers: list[dict[str, float]] = []

    def propensities(self, product: str, _: Scorer, results: list[Result]) -> list[Any]:
        if results is not self._results:
            self._results = results
            self._offers = [{o["product"]: o["propensity"] for o in r["recommendations"]} for r in results]
        return [offers.get(product, NOT_OFFERED) for offers in self._offers]


def input_tensors(scorer: Scorer) -> list[MetadataTensor]:
    """One tensor per field a record of the version may carry (its id, features and derived fields' sources),
    typed as the version's record schema types the field: a number is FP32 (what the boosters read), the rest
    BYTES."""
    properties = record_schema_of(scorer)["properties"]
    return [
        MetadataTensor(name=name, datatype="FP32" if "number" in _types(schema) else "BYTES", shape=[-1])
        for name, schema in properties.items()
    ]


def _types(schema: dict[str, Any]) -> list[str]:
    if "type" in schema:
        return list(schema["type"])
    return list(chain.from_iterable(part.get("type", []) for part in schema.get("anyOf", [])))


def output_tensors(use_case: str, scorer: Scorer) -> list[MetadataTensor]:
    return [
        MetadataTensor(name=o.name, datatype=o.datatype, shape=[-1]) for o in outputs_of(use_case, scorer)
    ]


def records_of(request: InferenceRequest) -> list[Record]:
    """The records the input tensors hold, one per row: row i of every tensor is record i's fields."""
    content_type = (request.parameters or {}).get("content_type")
    if content_type not in (None, _TABULAR):
        raise BadTensor(f"content_type {content_type!r} is not served; send one tensor per field (or 'pd')")
    names = [tensor.name for tensor in request.inputs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BadTensor(f"inputs named more than once: {', '.join(repeated)}")
    columns = {tensor.name: _values(tensor) for tensor in request.inputs}
    rows = {len(values) for values in columns.values()}
    if len(rows) > 1:
        sizes = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
        raise BadTensor(f"every input must hold one value per record; rows per input: {sizes}")
    n = rows.pop()
    return [{name: values[row] for name, values in columns.items()} for row in range(n)]


def _values(tensor: RequestInput) -> list[Any]:
    """The tensor's values, checked against its shape ([n] or [n, 1]) and data type."""
    parameters = tensor.parameters or {}
    elsewhere = [key for key in _DATA_ELSEWHERE if key in parameters]
    if elsewhere:
        raise BadTensor(f"input {tensor.name!r}: {elsewhere[0]} is not served; send the data as JSON")
    if len(tensor.shape) == 2 and tensor.shape[1] != 1:
        raise BadTensor(f"input {tensor.name!r}: shape {tensor.shape}: a field's tensor is [n] or [n, 1]")
    values = _flat(tensor.data)
    if tensor.shape[0] != len(values):
        raise BadTensor(f"input {tensor.name!r}: shape {tensor.shape} but {len(values)} value(s) in data")
    if tensor.datatype in _FLOAT_TYPES:
        # NaN is how numpy (and so a tensor client) writes a missing number: the record's null.
        values = [None if isinstance(value, float) and math.isnan(value) else value for value in values]
    wrong = next((value for value in values if not _fits(value, tensor.datatype)), None)
    if wrong is not None:
        expected = {"BYTES": "strings", "BOOL": "true or false"}.get(tensor.datatype, "numbers")
        raise BadTensor(f"input {tensor.name!r}: {tensor.datatype} data must be {expected}; got {wrong!r}")
    return values


def _fits(value: Any, datatype: str) -> bool:
    """JSON's reading of a tensor's data type (null: a missing value, which the record's checks handle)."""
    if value is None:
        return True
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool)


def _flat(data: list[Any]) -> list[Any]:
    """Row-major data, flat or nested one level ([[v], [v], ...]) as an [n, 1] tensor may be written."""
    if any(isinstance(value, list) for value in data):
        if not all(isinstance(value, list) and len(value) == 1 for value in data):
            raise BadTensor("nested data must hold one value per row: [[v], [v], ...]")
        return [value[0] for value in data]
    return data


def response_outputs(
    use_case: str, scorer: Scorer, results: list[Result], requested: list[str] | None
) -> list[ResponseOutput]:
    """The requested outputs (absent: all) of the results, in request order."""
    available = {output.name: output for output in outputs_of(use_case, scorer)}
    names = requested if requested is not None else list(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise BadTensor(
            f"unknown output(s) {', '.join(unknown)}; outputs of {scorer.name}: {', '.join(available)}"
        )
    return [
        ResponseOutput(
            name=name,
            datatype=available[name].datatype,
            shape=[len(results)],
            data=available[name].values(scorer, results),
        )
        for name in names
    ]
