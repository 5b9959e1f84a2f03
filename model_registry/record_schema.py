"""The JSON Schema of one record of a model version, generated from its feature contract.

What a generated client or a CRM form validates against: each field the version reads with its JSON type, the
categories seen in training as an enum (an unseen value is still allowed: it scores as missing), and a
description. Fields the version does not read are allowed (CRMs send whole records) and reported back in each
result's `unknown_fields`.
"""

from __future__ import annotations

from typing import Any

from model_registry.contract import Feature, FeatureContract, has_integer_categories
from model_registry.numbers import FLOAT32_MAX

DIALECT = "https://json-schema.org/draft/2020-12/schema"
NO_NUL = "^[^\\x00]*$"
# What numbers.as_number reads: a finite number the boosters' float32 holds, or null.
NUMBER: dict[str, Any] = {"type": ["number", "null"], "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}


def record_schema(
    contract: FeatureContract, title: str, description: str, max_id_length: int
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        contract.id_field: {
            "type": ["string", "integer", "null"],
            "maxLength": max_id_length,
            "pattern": NO_NUL,  # no database holds NUL in text: such an id is refused
            "description": "The record's ID, echoed in its result; a stored customer's id completes the record "
            "from the customer store where the route takes stored customers.",
        }
    }
    derived_fields = {derivation.field: derivation for derivation in contract.derived}
    for derivation in contract.derived:
        for source in derivation.sources:
            properties.setdefault(source, _source_schema(derivation.rule, derivation.field))
    for feature in contract.features:
        schema = _feature_schema(feature)
        if feature.name in derived_fields:
            rule = derived_fields[feature.name].description
            schema["description"] = f"{schema['description']} Derived when absent: {rule}"
        properties[feature.name] = schema
    return {
        "$schema": DIALECT,
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
        "additionalProperties": True,
    }


def _feature_schema(feature: Feature) -> dict[str, Any]:
    meaning = f"{feature.description} " if feature.description else ""
    if feature.kind == "numeric":
        return {
            **NUMBER,
            "description": f"{meaning}A number (|x| <= 3.4e38); null or absent scores as missing.".strip(),
        }
    # An integer is one of the categories only where training saw integers ("3"); a string outside the enum
    # scores as missing, it is not an error.
    types = ["string", "integer", "null"] if has_integer_categories(feature) else ["string", "null"]
    return {
        "anyOf": [{"enum": list(feature.categories)}, {"type": types}],
        "description": f"{meaning}One of the categories seen in training (listed); any other value, null or "
        "absent scores as missing.".strip(),
        "examples": list(feature.categories[:3]),
    }


def _source_schema(rule: str, derived: str) -> dict[str, Any]:
    shape: dict[str, Any] = {"type": ["string", "null"]} if rule == "item_count" else NUMBER
    return {**shape, "description": f"Read to derive {derived} when the record lacks it."}
