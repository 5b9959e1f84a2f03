"""The feature contract: how API records become the model's matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_registry.contract import Feature, FeatureContract, api_name


@pytest.mark.parametrize(
    ("column", "name"),
    [
        ("customerID", "customer_id"),
        ("StreamingTV", "streaming_tv"),
        ("Total Time Spent on Website", "total_time_spent_on_website"),
        ("emp.var.rate", "emp_var_rate"),
        ("SeniorCitizen", "senior_citizen"),
    ],
)
def test_api_names_follow_the_documented_rule(column: str, name: str) -> None:
    assert api_name(column) == name


CONTRACT = FeatureContract(
    id_field="customer_id",
    features=[
        Feature("tenure", "numeric"),
        Feature("contract", "categorical", ("Month-to-month", "One year", "Two year")),
    ],
)


def test_a_known_category_sets_its_one_hot_column() -> None:
    matrix, errors = CONTRACT.encode([{"tenure": 3, "contract": "One year"}])
    assert errors == []
    assert matrix.tolist() == [[3.0, 0.0, 1.0, 0.0]]


def test_an_unseen_category_and_a_missing_field_score_as_missing() -> None:
    matrix, errors = CONTRACT.encode([{"contract": "Ten years"}])
    assert errors == []
    assert all(math.isnan(v) for v in matrix[0])


def test_every_bad_field_is_reported_with_its_path() -> None:
    _, errors = CONTRACT.encode([{"tenure": 1}, {"tenure": "ten", "contract": 2.5}], "customers")
    assert [(e.path, e.message) for e in errors] == [
        ("customers[1].tenure", "must be a finite number or null"),
        ("customers[1].contract", "must be a string or null"),
    ]


def test_the_contract_survives_a_round_trip_through_json() -> None:
    again = FeatureContract.from_dict(CONTRACT.to_dict())
    records = [{"tenure": 5, "contract": "Two year"}]
    assert np.array_equal(again.encode(records)[0], CONTRACT.encode(records)[0])
    assert again.column_names == [
        "tenure",
        "contract=Month-to-month",
        "contract=One year",
        "contract=Two year",
    ]
