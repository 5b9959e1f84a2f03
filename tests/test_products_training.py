"""The products trainer on the real data: what a version holds, and that no booster reads its own answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_registry.bundle import ModelBundle
from model_registry.catalogue import ProductCatalogue
from model_registry.registry import ModelRegistry
from tests.conftest import small
from tests.test_products_api import PRODUCTS
from training.data import load_dataset
from training.products import SuspectedLeakError, train_products
from training.ranking import hidden_cases, hidden_product
from training.spec import find_spec


@pytest.fixture(scope="module")
def bundle(registry: ModelRegistry, products_version: int) -> ModelBundle:
    return registry.load("clm-products", products_version)


def test_one_version_holds_one_booster_per_product_and_the_catalogue(bundle: ModelBundle) -> None:
    assert list(bundle.boosters) == PRODUCTS
    catalogue = ProductCatalogue.from_metadata(bundle.metadata)
    assert catalogue.names == PRODUCTS
    rules = {p.name: p.eligible_when for p in catalogue.products}
    assert all(rules[p].field == "internet_service" and rules[p].none_of == ("No",) for p in PRODUCTS[:6])
    assert rules["multiple_lines"].field == "phone_service"
    assert rules["multiple_lines"].any_of == ("Yes",)
    assert set(bundle.metadata["check"]["probabilities"]) == set(PRODUCTS)


def test_the_bill_churn_and_id_are_not_features(bundle: ModelBundle) -> None:
    fields = {f.name for f in bundle.contract.features}
    assert fields.isdisjoint({"monthly_charges", "total_charges", "churn", "customer_id"})


@pytest.mark.parametrize("product", PRODUCTS)
def test_a_product_booster_scores_the_same_whatever_the_product_field_holds(
    bundle: ModelBundle, data_dir: Path, product: str
) -> None:
    # The raw booster on the unmasked matrix: proof that it never learned a split on its own field.
    dataset = load_dataset(find_spec("products"), data_dir)
    records = dataset.records(dataset.holdout)[:300]
    scores = []
    for value in ["Yes", "No", "No internet service", "No phone service", None, "never seen"]:
        matrix, errors = bundle.contract.encode([{**r, product: value} for r in records])
        assert not errors
        scores.append(bundle.boosters[product].inplace_predict(matrix))
    for other in scores[1:]:
        np.testing.assert_array_equal(other, scores[0])


def test_no_product_scores_suspiciously_well_on_the_holdout(bundle: ModelBundle) -> None:
    holdout = bundle.metadata["holdout"]
    aucs = [holdout[f"{p}.roc_auc"] for p in PRODUCTS]
    assert max(aucs) < 0.95
    assert min(aucs) > 0.6
    assert holdout["roc_auc"] == pytest.approx(np.mean(aucs))


def test_the_training_run_reports_ranking_quality_against_popularity(
    registry: ModelRegistry, products_version: int
) -> None:
    metrics = registry.run_metrics(registry.get_version("clm-products", products_version))
    for name in ["hit_at_1", "hit_at_3", "popularity_hit_at_1", "popularity_hit_at_3", "random_hit_at_3"]:
        assert 0 < metrics[f"holdout.ranking.{name}"] <= 1
    assert metrics["holdout.ranking.customers"] > 1000
    assert {f"holdout.{p}.roc_auc" for p in PRODUCTS} <= set(metrics)


def test_each_ranking_case_hides_one_owned_product_among_its_candidates(
    bundle: ModelBundle, data_dir: Path
) -> None:
    catalogue = ProductCatalogue.from_metadata(bundle.metadata)
    dataset = load_dataset(find_spec("products"), data_dir)
    records = dataset.records(dataset.holdout)
    ids = dataset.ids[dataset.holdout].tolist()
    cases = hidden_cases(catalogue, records, ids)
    originals = dict(zip(ids, records, strict=True))
    for case in cases:
        original = originals[case.customer_id]
        assert original[case.hidden] == "Yes"
        assert case.record[case.hidden] == "No"
        assert case.hidden in case.candidates
        assert all(original[p] == "No" for p in case.candidates if p != case.hidden)
    assert len(cases) > 1000


def test_the_hidden_product_depends_only_on_the_customer() -> None:
    owned = ["online_backup", "streaming_tv", "multiple_lines"]
    # Worked out by hand from sha256("hidden:<id>") % 3: a salted hash() would change these from run to run.
    assert hidden_product("7590-VHVEG", owned) == "streaming_tv"
    assert hidden_product("5575-GNVDE", owned) == "online_backup"
    assert {hidden_product(f"{i:04d}-X", owned) for i in range(50)} == set(owned)


def test_a_version_whose_boosters_can_read_the_bill_is_not_registered(
    registry: ModelRegistry, data_dir: Path, products_version: int
) -> None:
    # Learning fast enough to find the leak within the short test fit.
    spec = small(find_spec("products"))
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"learning_rate": 0.3})})
    with_bill = spec.data.model_copy(
        update={"leave_out": [c for c in spec.data.leave_out if c.column == "Churn"]}
    )
    with pytest.raises(SuspectedLeakError, match="not registered"):
        train_products(spec.model_copy(update={"data": with_bill}), data_dir, registry)
    assert registry.versions("clm-products")[-1].version == products_version
