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
        ("customers[1].tenure", "must be a finite number (|x| <= 3.4e38) or null"),
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


def test_a_record_encodes_the_same_alone_as_in_a_large_batch() -> None:
    """Small batches take the row-by-row path and large ones the column path: both must agree exactly."""
    values = {
        "tenure": [0, 7, 12.5, None, True, "7", 1e39, float("nan"), 10**400, [1]],
        "contract": ["One year", "Two year", "Ten years", None, 3, 2.5, True, "", {"a": 1}, "Month-to-month"],
    }
    records = [
        {"tenure": t, "contract": c} for t in values["tenure"] for c in values["contract"]
    ]  # 100 records: the column path
    batch, batch_errors = CONTRACT.encode(records, "r")
    for row, record in enumerate(records):
        alone, alone_errors = CONTRACT.encode([record], "r")
        assert np.array_equal(alone[0], batch[row], equal_nan=True), record
        assert [e.message for e in alone_errors] == [
            e.message for e in batch_errors if e.path.startswith(f"r[{row}].")
        ], record


def test_an_integer_is_a_category_only_where_training_saw_integers() -> None:
    contract = FeatureContract(
        id_field="id",
        features=[
            Feature("region", "categorical", ("1", "2", "10")),
            Feature("contract", "categorical", ("One year", "Two year")),
        ],
    )
    records = [{"region": 2, "contract": "One year"}, {"region": "10", "contract": 1}]
    for batch in (records, records * 20):  # the row path and the column path
        matrix, errors = contract.encode(batch, "r")
        assert matrix[0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
        assert matrix[1, :3].tolist() == [0.0, 0.0, 1.0]
        assert [(e.path, e.message) for e in errors if e.path.startswith("r[1].")] == [
            ("r[1].contract", "must be a string or null")
        ]
