"""Derived fields: declared in a spec, stored in the contract, applied by the contract's own encoding."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from model_registry.contract import Feature, FeatureContract
from model_registry.derived import Derivation

CONTRACT = FeatureContract(
    id_field="product_id",
    features=[Feature("tag_count", "numeric"), Feature("discount", "numeric"), Feature("banner", "numeric")],
    derived=(
        Derivation(field="tag_count", rule="item_count", sources=("tags",), description="non-empty tags"),
        Derivation(field="discount", rule="ratio", sources=("price", "retail"), description="price / retail"),
        Derivation(field="banner", rule="default", value=0, description="blank means no banner"),
    ),
)


def test_derived_fields_are_filled_in_from_their_sources() -> None:
    matrix, errors = CONTRACT.encode([{"tags": "a, b,,c ", "price": 4, "retail": 8}])
    assert errors == []
    assert matrix.tolist() == [[3.0, 0.5, 0.0]]


def test_a_derived_field_the_record_carries_is_taken_as_sent() -> None:
    matrix, _ = CONTRACT.encode([{"tags": "a,b", "tag_count": 9, "banner": 1, "price": 4, "retail": 8}])
    assert matrix.tolist() == [[9.0, 0.5, 1.0]]


def test_missing_sources_and_a_zero_divisor_give_a_missing_value() -> None:
    matrix, errors = CONTRACT.encode([{"price": 4, "retail": 0}])
    assert errors == []
    assert math.isnan(matrix[0, 0])
    assert math.isnan(matrix[0, 1])


def test_a_bad_source_is_named_with_its_path() -> None:
    _, errors = CONTRACT.encode([{}, {"tags": 5, "price": "four"}], "listings")
    assert [(e.path, e.message) for e in errors] == [
        ("listings[1].tags", "must be a string or null"),
        ("listings[1].price", "must be a finite number (|x| <= 3.4e38) or null"),
    ]


def test_the_derivations_survive_a_round_trip_through_json() -> None:
    again = FeatureContract.from_dict(CONTRACT.to_dict())
    assert again.derived == CONTRACT.derived
    assert again.with_derived({"tags": "x,y"}) == {
        "tags": "x,y",
        "tag_count": 2,
        "discount": None,
        "banner": 0,
    }


@pytest.mark.parametrize(
    "declared",
    [
        {"field": "n", "rule": "item_count", "description": "no source given"},
        {"field": "n", "rule": "ratio", "sources": ["a"], "description": "one source only"},
        {"field": "n", "rule": "default", "description": "default without a value"},
    ],
)
def test_a_derivation_that_does_not_fit_its_rule_is_refused(declared: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Derivation.model_validate(declared)
