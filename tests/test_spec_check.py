"""`clm spec check` on the real data: readable, unique IDs, both classes, named columns, and no leak."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner, Result

from training.cli import app
from training.spec import SPECS_DIR
from training.spec_check import categorical_roc_auc, numeric_roc_auc

CARD_SPEC = SPECS_DIR / "churn_card.toml"
NAIVE_BAYES = [
    "Naive_Bayes_Classifier_Attrition_Flag_Card_Category_Contacts_Count_12_mon_Dependent_count_Education_Level"
    f"_Months_Inactive_12_mon_{n}"
    for n in (1, 2)
]
LEAVE_OUT_BLOCK = re.compile(r"\[\[data\.leave_out\]\]\ncolumn = .*\nwhy = .*\n")


def check(spec: Path, data_dir: Path) -> Result:
    return CliRunner().invoke(app, ["spec", "check", str(spec)], env={"CLM_DATA_DIR": str(data_dir)})


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_the_shipped_card_spec_passes_and_reports_the_positive_rate(data_dir: Path) -> None:
    result = check(CARD_SPEC, data_dir)

    assert result.exit_code == 0, result.output
    assert "ID CLIENTNUM is unique" in result.output
    assert "positive rate 16.07% (1,627 of 10,127 rows)" in result.output
    assert "on the 8,076 training rows (not the holdout)" in result.output
    assert "LEAK?" not in result.output
    assert result.output.rstrip().endswith("result: ok")


def test_the_naive_bayes_columns_not_left_out_fail_the_check_by_name(tmp_path: Path, data_dir: Path) -> None:
    kept = LEAVE_OUT_BLOCK.sub("", CARD_SPEC.read_text())
    assert "leave_out" not in kept

    result = check(write_spec(tmp_path, kept), data_dir)

    assert result.exit_code == 1, result.output
    verdict = result.output.splitlines()[-1]
    assert verdict.startswith("result: FAILED, 2 column(s) look like leaks")
    for column in NAIVE_BAYES:
        found = re.search(rf"{column} \((\d\.\d{{4}})\)", verdict)
        assert found is not None, verdict
        assert float(found.group(1)) > 0.95
    assert "Total_Trans_Ct" not in verdict


def test_a_flagged_column_marked_checked_with_a_reason_passes(tmp_path: Path, data_dir: Path) -> None:
    why = "kept on purpose for this test: the column is known"
    checked = "".join(f'\n[[data.checked]]\ncolumn = "{c}"\nwhy = "{why}"\n' for c in NAIVE_BAYES)
    text = LEAVE_OUT_BLOCK.sub("", CARD_SPEC.read_text()).replace("\n[risk]", f"{checked}\n[risk]")

    result = check(write_spec(tmp_path, text), data_dir)

    assert result.exit_code == 0, result.output
    assert result.output.count(f"checked: {why}") == 2


def test_a_spec_naming_a_column_the_data_lacks_fails_naming_it(tmp_path: Path, data_dir: Path) -> None:
    text = CARD_SPEC.read_text().replace(
        "\n[[data.leave_out]]", '\ncategorical = ["Card_Tier"]\n\n[[data.leave_out]]', 1
    )

    result = check(write_spec(tmp_path, text), data_dir)

    assert result.exit_code == 2
    assert "has no column 'Card_Tier' (categorical)" in result.output


def test_an_unreadable_file_or_an_invalid_spec_exits_2_saying_why(tmp_path: Path, data_dir: Path) -> None:
    missing = CARD_SPEC.read_text().replace("credit_card_churn/BankChurners.csv", "crm/export.csv")
    not_csv = tmp_path / "export.csv"
    not_csv.write_bytes(b"\xff\xfe\x00garbage\x00\n\x00\x00")
    unreadable = CARD_SPEC.read_text().replace("credit_card_churn/BankChurners.csv", str(not_csv))

    for text, message in [
        (missing, f"{data_dir / 'crm/export.csv'} not found"),
        (unreadable, f"cannot read {not_csv}"),
        ("use_case = ", "is not valid TOML"),
        (CARD_SPEC.read_text().replace('id_column = "CLIENTNUM"', ""), "id_column"),
    ]:
        result = check(write_spec(tmp_path, text), data_dir)
        assert result.exit_code == 2, result.output
        assert message in result.output


def test_ids_that_repeat_fail_the_check_with_examples(tmp_path: Path, data_dir: Path) -> None:
    # The Wish listings repeat 232 product_ids; the diagnosis spec keeps the first row of each.
    text = (SPECS_DIR / "diagnosis.toml").read_text().replace("first_row_per_id = true", "")

    result = check(write_spec(tmp_path, text), data_dir)

    assert result.exit_code == 1, result.output
    assert "rows share their ID with another" in result.output
    assert "set first_row_per_id = true" in result.output


def test_a_missing_value_that_gives_the_target_away_is_scored_as_its_own_group() -> None:
    y = np.array([0, 1] * 50, dtype=np.int8)
    values = np.where(y == 1, np.nan, np.arange(100.0))

    assert numeric_roc_auc(values, y) == 1.0


def test_a_category_of_one_row_each_tells_nothing_and_scores_about_one_half() -> None:
    y = np.random.default_rng(1).integers(0, 2, 1000).astype(np.int8)
    unique_text = pd.Series([f"name {i}" for i in range(1000)], dtype="string")
    leaking = pd.Series(np.where(y == 1, "closed won", "lost"), dtype="string")

    assert categorical_roc_auc(unique_text, y) < 0.6
    assert categorical_roc_auc(leaking, y) == 1.0
