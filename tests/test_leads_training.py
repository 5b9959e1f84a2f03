"""Lead lines are trained from their specs alone: leave-out rules, grades stored with the version, the CLI."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import mlflow
import numpy as np
import pytest
from typer.testing import CliRunner

from model_registry.contract import api_name
from model_registry.grades import assign_grades
from model_registry.registry import ModelRegistry
from training.cli import app as clm
from training.spec import find_spec

# EVALUATION.md's leave-out list, written out here so that dropping a rule from a spec fails a test.
LEAKY_COLUMNS = {
    "inbound": [
        "Tags",
        "Lead Quality",
        "Lead Profile",
        "Asymmetrique Activity Index",
        "Asymmetrique Profile Index",
        "Asymmetrique Activity Score",
        "Asymmetrique Profile Score",
        "Last Activity",
        "Last Notable Activity",
    ],
    "outbound": ["duration"],
}
IDENTIFIERS = {"inbound": ["Prospect ID", "Lead Number", "Unnamed: 37"], "outbound": []}
TARGETS = {"inbound": "Converted", "outbound": "y"}


@pytest.fixture(scope="module")
def versions(inbound_version: int, outbound_version: int) -> dict[str, int]:
    return {"inbound": inbound_version, "outbound": outbound_version}


@pytest.mark.parametrize("line", ["inbound", "outbound"])
def test_no_post_contact_column_is_ever_a_feature_of_a_registered_version(
    registry: ModelRegistry, versions: dict[str, int], line: str
) -> None:
    contract = registry.load(f"clm-leads-{line}", versions[line]).contract
    fields = {f.name for f in contract.features}
    forbidden = LEAKY_COLUMNS[line] + IDENTIFIERS[line] + [TARGETS[line]]
    assert fields.isdisjoint(api_name(c) for c in forbidden)
    assert len(fields) >= 10


@pytest.mark.parametrize("line", ["inbound", "outbound"])
def test_each_left_out_column_is_written_down_with_why(
    registry: ModelRegistry, versions: dict[str, int], line: str
) -> None:
    spec_reasons = {c.column: c.why for c in find_spec("leads", line).data.leave_out}
    assert set(LEAKY_COLUMNS[line]) <= set(spec_reasons)
    run_id = registry.get_version(f"clm-leads-{line}", versions[line]).run_id
    logged = json.loads(_artifact_text(registry, run_id, "left_out_columns.json"))
    for column in LEAKY_COLUMNS[line]:
        assert logged[column] == spec_reasons[column]


@pytest.mark.parametrize("line", ["inbound", "outbound"])
def test_a_probability_on_a_cut_off_takes_that_grade_and_one_just_below_the_next(
    registry: ModelRegistry, versions: dict[str, int], line: str
) -> None:
    grades = registry.load(f"clm-leads-{line}", versions[line]).metadata["grades"]
    assert len(grades) == 4
    for better, worse in pairwise(grades):
        cutoff = better["min_probability"]
        below = float(np.nextafter(cutoff, 0.0))
        assert assign_grades([cutoff, below], grades).tolist() == [better["grade"], worse["grade"]]


@pytest.mark.parametrize("line", ["inbound", "outbound"])
def test_grades_are_stored_with_the_version_with_what_each_one_means(
    registry: ModelRegistry, versions: dict[str, int], line: str
) -> None:
    metadata = registry.load(f"clm-leads-{line}", versions[line]).metadata
    grades = metadata["grades"]
    assert [g["grade"] for g in grades] == ["A", "B", "C", "D"]
    cutoffs = [g["min_probability"] for g in grades]
    assert cutoffs == sorted(cutoffs, reverse=True)
    assert cutoffs[-1] == 0.0
    assert [g["share"] for g in grades] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert grades[0]["meaning"].startswith("A: the top 10% of leads")
    assert all("converted on the holdout" in g["meaning"] for g in grades)
    quantiles = metadata["score_quantiles"]
    assert len(quantiles) == 101
    assert quantiles == sorted(quantiles)
    assert metadata["line"] == line


@pytest.mark.parametrize("line", ["inbound", "outbound"])
def test_observed_conversion_falls_from_grade_a_to_d_on_the_holdout(
    registry: ModelRegistry, versions: dict[str, int], line: str
) -> None:
    metrics = registry.run_metrics(registry.get_version(f"clm-leads-{line}", versions[line]))
    rates = [metrics[f"holdout.grade_{g}_positive_rate"] for g in "ABCD"]
    assert rates == sorted(rates, reverse=True)
    assert len(set(rates)) == 4
    assert metrics["holdout.grades_fall_strictly"] == 1.0


def test_the_run_logs_conversion_and_lift_by_grade_and_by_decile(
    registry: ModelRegistry, inbound_version: int
) -> None:
    run_id = registry.get_version("clm-leads-inbound", inbound_version).run_id
    client = mlflow.MlflowClient(registry.tracking_uri)
    artifacts = {a.path for folder in ("tables", "plots") for a in client.list_artifacts(run_id, folder)}
    assert {"tables/holdout_grades.csv", "tables/holdout_deciles.csv"} <= artifacts
    assert {"plots/grades.png", "plots/lift.png"} <= artifacts
    header = _artifact_text(registry, run_id, "tables/holdout_grades.csv").splitlines()[0]
    assert header.split(",") == [
        "grade",
        "min_probability",
        "validation_share",
        "validation_conversion",
        "rows",
        "share",
        "positive_rate",
        "lift",
    ]


def test_training_leads_without_a_line_names_the_lines() -> None:
    result = CliRunner().invoke(clm, ["train", "leads"])
    assert result.exit_code == 2
    assert "inbound, outbound" in result.output
    assert "--line" in result.output


def _artifact_text(registry: ModelRegistry, run_id: str | None, path: str) -> str:
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=path, tracking_uri=registry.tracking_uri
    )
    return Path(local).read_text()
