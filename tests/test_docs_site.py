"""The documentation site's generated parts follow the code, and `make docs-check` sees what the docs show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.docs_check import blocks_of, shape_differences
from scripts.mkdocs_hooks import SETTINGS_MARKER, environment_names, settings_classes, settings_reference

DOCS = Path(__file__).resolve().parent.parent / "docs"


def expected_default(default: object) -> str:
    if isinstance(default, bool):
        return "true" if default else "false"
    if default is None:
        return "unset"
    return json.dumps(default) if isinstance(default, dict | list) else str(default)


def test_the_configuration_page_lists_every_setting_with_its_variable_and_default() -> None:
    reference = settings_reference()
    shown = set()
    for _, settings in settings_classes():
        for name, field in settings.model_fields.items():
            variable = environment_names(settings, name, field)[0]
            row = next((line for line in reference.splitlines() if f"`{variable}`" in line), None)
            assert row is not None, f"{settings.__name__}.{name} is not on the configuration page"
            if (
                variable in shown
            ):  # inherited, or read by two classes alike (CLM_DATABASE_URL): described once
                continue
            shown.add(variable)
            assert f"`{expected_default(field.default)}`" in row, (name, row)
            assert (field.description or "").split(";")[0][:40] in row.replace("\\|", "|"), (name, row)


def test_the_configuration_page_is_generated_where_the_marker_stands() -> None:
    assert SETTINGS_MARKER in (DOCS / "configuration.md").read_text()


def test_a_key_renamed_in_the_real_output_is_a_difference() -> None:
    shown = {"results": [{"customer_id": "a", "churn_probability": 0.5}], "request_id": "x"}
    assert (
        shape_differences(
            shown, {"results": [{"customer_id": "b", "churn_probability": 0.1}], "request_id": "y"}
        )
        == []
    )
    renamed = {"results": [{"customer_id": "b", "probability": 0.1}], "request_id": "y"}
    assert shape_differences(shown, renamed) == [
        "$.results[0]: keys shown but not returned: ['churn_probability']",
        "$.results[0]: keys returned but not shown: ['probability']",
    ]


def test_blocks_are_run_skipped_with_a_reason_or_paired_with_the_output_shown(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        '```bash\ncurl -s http://127.0.0.1:8000/readyz\n```\n\n```json\n{"status": "ready"}\n```\n\n'
        "<!-- docs-check: skip needs a cluster -->\n```bash\nkubectl apply -f deploy/\n```\n\n"
        "```text\nnot run\n```\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("scripts.docs_check.ROOT", tmp_path)
        first, second = blocks_of(page)
    assert (first.code, first.output, first.skip) == (
        "curl -s http://127.0.0.1:8000/readyz",
        '{"status": "ready"}',
        None,
    )
    assert (second.skip, second.output) == ("needs a cluster", None)


def test_every_page_s_run_blocks_show_valid_json_output() -> None:
    for page in sorted(DOCS.rglob("*.md")):
        for block in blocks_of(page):
            if block.output is not None:
                json.loads(block.output)  # a trimmed or hand-edited output would not parse
