"""Specs: the packaged ones and those in CLM_SPECS_DIR, lines of a use case, `clm train --spec`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from model_registry.registry import CHALLENGER, CHAMPION, ModelRegistry
from training.cli import app
from training.spec import SPECS_DIR, SpecError, all_specs, find_spec

CARD_SPEC = SPECS_DIR / "churn_card.toml"
# A short fit, as small() in conftest gives: real trees on the real data, in seconds.
SHORT_FIT = "\n[training]\nmax_rounds = 60\nearly_stopping_rounds = 20\n"


def card_spec_text(**replace: str) -> str:
    """The packaged card spec's text with top-level string fields replaced (line, registered_model, ...)."""
    text = CARD_SPEC.read_text()
    for field, value in replace.items():
        old = next(line for line in text.splitlines() if line.startswith(f"{field} = "))
        text = text.replace(old, f'{field} = "{value}"', 1)
    return text


def clm(tmp_path: Path, data_dir: Path, *args: str, **env: str) -> Result:
    """The `clm` training commands on a registry of the test's own."""
    base = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "CLM_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "CLM_DATA_DIR": str(data_dir),
        "COLUMNS": "200",  # typer's error box wraps at the terminal's width
    }
    return CliRunner().invoke(app, list(args), env={**base, **env})


def test_a_use_case_without_a_line_means_its_default_line_even_when_it_has_others() -> None:
    assert find_spec("churn").registered_model == "clm-churn"
    assert find_spec("churn").data.file == "telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"
    assert find_spec("churn", "card").registered_model == "clm-churn-card"
    assert {s.registered_model for s in all_specs() if s.use_case == "churn"} == {
        "clm-churn",
        "clm-churn-card",
    }


def test_a_use_case_without_a_default_line_asks_for_one_and_lists_its_lines() -> None:
    with pytest.raises(LookupError, match="has lines inbound, outbound; pick one with --line"):
        find_spec("leads")
    with pytest.raises(LookupError, match=r"has lines \(default: no --line\), card"):
        find_spec("churn", "gold")


def test_specs_in_the_specs_dir_are_found_besides_the_packaged_ones(tmp_path: Path) -> None:
    (tmp_path / "gold.toml").write_text(card_spec_text(line="gold", registered_model="clm-churn-gold"))

    assert find_spec("churn", "gold", tmp_path).registered_model == "clm-churn-gold"
    assert find_spec("churn", extra_dir=tmp_path).registered_model == "clm-churn"
    assert len(all_specs(tmp_path)) == len(all_specs()) + 1
    with pytest.raises(LookupError):
        find_spec("churn", "gold")


def test_a_registered_model_declared_twice_is_an_error_naming_both_files(tmp_path: Path) -> None:
    (tmp_path / "copy.toml").write_text(card_spec_text(line="gold"))

    with pytest.raises(SpecError) as raised:
        all_specs(tmp_path)

    assert str(CARD_SPEC) in str(raised.value)
    assert str(tmp_path / "copy.toml") in str(raised.value)
    assert "'clm-churn-card'" in str(raised.value)


def test_a_line_declared_twice_is_an_error_naming_both_files(tmp_path: Path) -> None:
    (tmp_path / "copy.toml").write_text(card_spec_text(registered_model="clm-churn-card-2"))

    with pytest.raises(SpecError, match=r"churn_card\.toml and .*copy\.toml both declare line 'card'"):
        find_spec("churn", "card", tmp_path)


def test_a_broken_spec_file_is_named_with_what_is_wrong(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "broken.toml").write_text(card_spec_text(line="gold").replace('kind = "binary"', "kind = 3"))

    result = clm(tmp_path, data_dir, "train", "churn", CLM_SPECS_DIR=str(tmp_path))

    assert result.exit_code == 2
    assert f"{tmp_path / 'broken.toml'} is not a valid spec" in result.output
    assert "kind" in result.output


def test_a_spec_file_is_trained_and_a_spec_of_the_specs_dir_is_retrained_and_promoted(
    tmp_path: Path, data_dir: Path
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    spec_file = specs / "gold.toml"
    spec_file.write_text(card_spec_text(line="gold", registered_model="clm-churn-gold") + SHORT_FIT)
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))

    trained = clm(tmp_path, data_dir, "train", "--spec", str(spec_file))
    assert trained.exit_code == 0, trained.output
    assert "clm-churn-gold version 1 (champion): holdout ROC AUC 0.9" in trained.output

    unknown = clm(tmp_path, data_dir, "retrain", "churn", "--line", "gold")
    assert unknown.exit_code == 2
    assert "pick one with --line" in unknown.output

    retrained = clm(tmp_path, data_dir, "retrain", "churn", "--line", "gold", CLM_SPECS_DIR=str(specs))
    assert retrained.exit_code == 0, retrained.output
    challenger = registry.resolve("clm-churn-gold", CHALLENGER)
    assert challenger is not None
    assert challenger.version == 2

    promoted = clm(tmp_path, data_dir, "promote", "churn", "--line", "gold", CLM_SPECS_DIR=str(specs))
    # The same spec on the same data trains the same trees: the gate sees equal figures and passes.
    assert promoted.exit_code == 0, promoted.output
    champion = registry.resolve("clm-churn-gold", CHAMPION)
    assert champion is not None
    assert champion.version == 2


def test_train_takes_a_use_case_or_a_spec_file_not_both(tmp_path: Path, data_dir: Path) -> None:
    neither = clm(tmp_path, data_dir, "train")
    both = clm(tmp_path, data_dir, "train", "churn", "--spec", str(CARD_SPEC))

    assert neither.exit_code == 2
    assert "name a use case" in neither.output
    assert both.exit_code == 2
    assert "not both" in both.output


def test_a_kind_training_does_not_know_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "odd.toml").write_text(
        card_spec_text(line="gold", registered_model="clm-churn-gold", kind="survival")
    )

    with pytest.raises(SpecError, match="unknown kind 'survival'; known: binary, products, diagnosis"):
        all_specs(tmp_path)
