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
        refs = []
        for line in models.lines(use_case.name):
            scorer = models.for_line(use_case.name, line)
            component = f"{scorer.name}.record"
            schema = record_schema_of(scorer)
            schema.pop("$schema")
            components[component] = schema
            refs.append({"$ref": f"#/components/schemas/{component}"})
        request = components.get(use_case.request.__name__)
        if not refs or request is None:
            continue
        records = request["properties"][use_case.records_field]
        records["items"] = refs[0] if len(refs) == 1 else {"anyOf": refs}
    return typed
