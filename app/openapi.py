"""The OpenAPI document with the records of the lines served typed by their models' own contracts.

FastAPI describes a scoring body's records as free objects: their fields are known only once the model
versions are loaded. Each served version's record schema (GET /v1/models/{name}/schema) is added as a
component, and each use case's records are typed as one of its served lines' records, so a generated client
and a CRM form get typed records. Rebuilt when what is served changes (a promotion, a reload).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from app.errors import ServiceError
from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.served import record_schema_of
from app.scoring.use_cases.registry import USE_CASES

OpenApi = dict[str, Any]


class TypedOpenApi:
    """`app.openapi` for the service: FastAPI's document, then the records of what `models` serves."""

    def __init__(self, base: Callable[[], OpenApi]) -> None:
        self.base = base
        self.models: LoadedModels | None = None  # set by the lifespan once the models load
        self._cached: tuple[tuple[tuple[str, int], ...], OpenApi] | None = None

    def __call__(self) -> OpenApi:
        document = self.base()
        if self.models is None:
            return document
        served = tuple((scorer.name, scorer.version) for scorer in self.models.all())
        if self._cached is None or self._cached[0] != served:
            self._cached = (served, with_record_schemas(document, self.models))
        return self._cached[1]


def with_record_schemas(document: OpenApi, models: LoadedModels) -> OpenApi:
    typed = copy.deepcopy(document)
    components = typed["components"]["schemas"]
    for use_case in USE_CASES:
        request = components.get(use_case.request.__name__)
        lines = models.lines(use_case.name)
        if not lines or request is None or use_case.typed_records:
            continue
        shapes, refs = [], []
        for line in lines:
            scorer = models.for_line(use_case.name, line)
            schema = record_schema_of(scorer)
            schema.pop("$schema")
            components[f"{scorer.name}.record"] = schema
            # With "strict": true a field the model does not read is a 422: the record takes its fields only.
            components[f"{scorer.name}.record.strict"] = {
                **schema,
                "title": f"{schema['title']}, strict",
                "additionalProperties": False,
            }
            ref = {"$ref": f"#/components/schemas/{scorer.name}.record"}
            refs.append(ref)
            strict_ref = {"$ref": f"#/components/schemas/{scorer.name}.record.strict"}
            shapes.append(_line_shape(use_case.records_field, line, {"const": False}, ref))
            shapes.append(_line_shape(use_case.records_field, line, {"const": True}, strict_ref))
        records = request["properties"][use_case.records_field]
        records["items"] = refs[0] if len(refs) == 1 else {"anyOf": refs}
        # Each line's records are read by that line's model: the body is one of these shapes.
        request["anyOf"] = shapes
        _name_served_lines(request, lines)
    _name_served_outcome_items(components, models)
    return typed


def _line_shape(
    records_field: str, line: str | None, strict: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    """A body for one line: `line` names it (null or absent: the default line), its records are that line's."""
    properties = {
        "line": {"const": line} if line is not None else {"type": "null"},
        "strict": strict,
        records_field: {"items": record},
    }
    required = (["line"] if line is not None else []) + (["strict"] if strict["const"] else [])
    return {"properties": properties, "required": required}


def _name_served_lines(request: OpenApi, lines: list[str | None]) -> None:
    """A body's `line` is one of the lines served (another one is a 404); null or absent for the default one."""
    line = request["properties"].get("line")
    if line is None:
        return
    named = {"enum": [served for served in lines if served is not None]}
    kept = {key: line[key] for key in ("title", "description", "examples", "default") if key in line}
    # A required `line` (leads: no default line) takes only a served name; an optional one also null.
    optional = "line" not in request.get("required", [])
    request["properties"]["line"] = {**kept, **({"anyOf": [named, {"type": "null"}]} if optional else named)}


def _name_served_outcome_items(components: OpenApi, models: LoadedModels) -> None:
    """An outcome's product is one of the served products' catalogue, its lead line a served lead line (another
    is a 422, app/scoring/outcomes.py)."""
    outcome = components.get("OutcomeIn")
    if outcome is None:
        return
    try:
        products = models.for_line("products", None).catalogue.names
    except ServiceError:  # no products model served (or not loaded yet): no product is accepted
        products = []
    served = {
        "product": products,
        "line": [line for line in models.lines("leads") if line is not None],
    }
    for shape in outcome.get("oneOf", []):
        for field, names in served.items():
            if shape["properties"].get(field) == {"type": "string"}:
                shape["properties"][field] = {"enum": names}
