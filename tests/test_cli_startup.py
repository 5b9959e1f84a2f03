"""`clm` starts fast: the commands that need no model (`clm --help`, `clm db upgrade`, every `--help`) import
none of the heavy libraries; the commands that do import them when they run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("xgboost", "mlflow", "sklearn", "pandas", "pyarrow", "numba", "scipy")


def python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_importing_the_cli_imports_no_heavy_library() -> None:
    loaded = python(
        "-c",
        f"import sys, app.cli; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))",
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def test_a_sub_command_help_exits_0() -> None:
    shown = python("-m", "app.cli", "db", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "upgrade" in shown.stdout
