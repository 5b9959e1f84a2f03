"""`clm promote`, `clm rollback` and `clm models history` on a real registry holding real churn versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from model_registry.history import champion_history, move_champion
from model_registry.registry import CHALLENGER, CHAMPION, ModelRegistry
from tests.conftest import ChurnLineup
from training import promotion
from training.cli import app
from training.spec import find_spec

CHURN = "clm-churn"


def clm(registry: ModelRegistry, data_dir: Path, *args: str) -> Result:
    env = {"MLFLOW_TRACKING_URI": registry.tracking_uri, "CLM_DATA_DIR": str(data_dir)}
    return CliRunner().invoke(app, list(args), env=env)


def champion(registry: ModelRegistry) -> int:
    ref = registry.resolve(CHURN, CHAMPION)
    assert ref is not None
    return ref.version


def test_a_better_challenger_is_promoted_and_the_decision_is_tagged_on_it(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, data_dir: Path
) -> None:
    lineup_registry.set_alias(CHURN, CHAMPION, churn_lineup.weak)
    lineup_registry.set_alias(CHURN, CHALLENGER, churn_lineup.good)

    result = clm(lineup_registry, data_dir, "promote", "churn")

    assert result.exit_code == 0, result.output
    assert f"decision: promoted; champion is now version {churn_lineup.good}" in result.output
    assert champion(lineup_registry) == churn_lineup.good
    assert lineup_registry.resolve(CHURN, CHALLENGER) is None
    tags = lineup_registry.get_version(CHURN, churn_lineup.good).tags
    assert tags["gate.decision"] == "promoted"
    assert tags["gate.champion_version"] == str(churn_lineup.weak)
    assert float(tags["gate.roc_auc.candidate"]) > float(tags["gate.roc_auc.champion"])
    assert float(tags["gate.log_loss.candidate"]) < float(tags["gate.log_loss.champion"])


def test_a_worse_challenger_is_refused_and_the_champion_stays(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, data_dir: Path
) -> None:
    lineup_registry.set_alias(CHURN, CHALLENGER, churn_lineup.weak)

    result = clm(lineup_registry, data_dir, "promote", "churn")

    assert result.exit_code == 1
    assert f"decision: refused; champion stays version {churn_lineup.good}" in result.output
    assert "WORSE" in result.output
    assert champion(lineup_registry) == churn_lineup.good
    challenger = lineup_registry.resolve(CHURN, CHALLENGER)
    assert challenger is not None
    assert challenger.version == churn_lineup.weak
    assert challenger.tags["gate.decision"] == "refused"
    assert "roc_auc" in challenger.tags["gate.reasons"]


def test_force_promotes_a_refused_version_and_records_that_it_was_forced(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, data_dir: Path
) -> None:
    result = clm(
        lineup_registry, data_dir, "promote", "churn", "--version", str(churn_lineup.weak), "--force"
    )

    assert result.exit_code == 0, result.output
    assert "decision: forced" in result.output
    assert champion(lineup_registry) == churn_lineup.weak
    assert lineup_registry.get_version(CHURN, churn_lineup.weak).tags["gate.decision"] == "forced"
    assert champion_history(lineup_registry, CHURN)[-1].action == "forced promote"


def test_the_margins_are_options(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, data_dir: Path
) -> None:
    lineup_registry.set_alias(CHURN, CHALLENGER, churn_lineup.weak)
    generous = ["--max-roc-auc-drop", "0.5", "--max-ece-rise", "1", "--max-log-loss-rise", "1"]

    result = clm(lineup_registry, data_dir, "promote", "churn", *generous)

    assert result.exit_code == 0, result.output
    assert champion(lineup_registry) == churn_lineup.weak


def test_rollback_puts_the_previous_champion_back_and_the_history_shows_who_was_champion_when(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, data_dir: Path
) -> None:
    good, weak = churn_lineup.good, churn_lineup.weak
    assert (
        clm(lineup_registry, data_dir, "promote", "churn", "--version", str(weak), "--force").exit_code == 0
    )

    result = clm(lineup_registry, data_dir, "rollback", "churn")

    assert result.exit_code == 0, result.output
    assert f"champion is version {good} again (was version {weak})" in result.output
    assert champion(lineup_registry) == good
    terms = champion_history(lineup_registry, CHURN)
    assert [(t.version, t.action, t.previous) for t in terms] == [
        (good, "first version", None),
        (weak, "forced promote", good),
        (good, "rollback", weak),
    ]
    assert terms[0].until == terms[1].since
    assert terms[-1].until is None
    assert terms[1].gate["figures"]["roc_auc"]["candidate"] < terms[1].gate["figures"]["roc_auc"]["champion"]
    shown = clm(lineup_registry, data_dir, "models", "history", "churn").output.splitlines()
    assert [line.split()[0] for line in shown[2:]] == [str(good), str(weak), str(good)]
    assert "forced promote" in shown[3]
    assert "now" in shown[4]

    again = clm(lineup_registry, data_dir, "rollback", "churn")
    assert again.exit_code == 1
    assert "no champion before" in again.output
    assert champion(lineup_registry) == good


def test_rollbacks_walk_back_through_promotions(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup
) -> None:
    for version in (churn_lineup.weak, churn_lineup.bad_check):
        move_champion(lineup_registry, CHURN, version, action="promote")

    assert promotion.rollback(lineup_registry, CHURN) == (churn_lineup.bad_check, churn_lineup.weak)
    assert promotion.rollback(lineup_registry, CHURN) == (churn_lineup.weak, churn_lineup.good)


def test_promote_without_a_challenger_says_what_to_do(lineup_registry: ModelRegistry, data_dir: Path) -> None:
    result = clm(lineup_registry, data_dir, "promote", "churn")

    assert result.exit_code == 1
    assert "has no challenger" in result.output


def test_the_gate_scores_the_holdout_through_the_registered_version_as_training_reported_it(
    lineup_registry: ModelRegistry, churn_lineup: ChurnLineup, data_dir: Path
) -> None:
    spec = find_spec("churn")
    for version in (churn_lineup.good, churn_lineup.weak):
        reported = lineup_registry.load(CHURN, version).metadata["holdout"]
        figures = promotion.holdout_figures(lineup_registry, spec, data_dir, version)
        for figure in ("roc_auc", "ece", "log_loss", "rows"):
            assert figures[figure] == pytest.approx(reported[figure])


@pytest.mark.parametrize(
    ("use_case", "line", "trained"),
    [
        ("leads", "inbound", "inbound_version"),
        ("products", None, "products_version"),
        ("diagnosis", None, "diagnosis_trained"),
    ],
)
def test_the_gate_scores_every_kind_of_model_as_its_training_reported(
    registry: ModelRegistry,
    data_dir: Path,
    request: pytest.FixtureRequest,
    use_case: str,
    line: str | None,
    trained: str,
) -> None:
    version = request.getfixturevalue(trained)
    version = version[0] if isinstance(version, tuple) else version
    spec = find_spec(use_case, line)
    reported = registry.load(spec.registered_model, version).metadata["holdout"]

    figures = promotion.holdout_figures(registry, spec, data_dir, version)

    assert {"roc_auc", "ece", "log_loss"} <= figures.keys()
    shared = [key for key in figures if key in reported]
    assert "roc_auc" in shared
    for key in shared:
        assert figures[key] == pytest.approx(reported[key]), key


def test_models_list_shows_each_versions_aliases(
    registry: ModelRegistry, data_dir: Path, churn_version: int
) -> None:
    result = clm(registry, data_dir, "models", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    churn_block = lines[lines.index("clm-churn") + 1 :]
    churn_block = churn_block[: next((i for i, v in enumerate(churn_block) if not v.startswith(" ")), None)]
    champion = registry.resolve("clm-churn", "champion")
    assert champion is not None
    line = next(v for v in churn_block if v.split()[:2] == ["version", str(champion.version)])
    assert "champion" in line
