"""Run the commands the docs show, against a real service, and check their output still has the shape shown.

    PYTHONPATH=$PWD .venv/bin/python scripts/docs_check.py            # make docs-check
    PYTHONPATH=$PWD .venv/bin/python scripts/docs_check.py --serve    # only serve the copy, to try the docs

The conventions, in README.md and every page under docs/:
- a ```bash or ```python block is run (bash with -euo pipefail, python with this interpreter) from the
  repository root, and must exit 0;
- `<!-- docs-check: skip REASON -->` on the line before a block leaves it out, saying why (it serves forever,
  needs a cluster, ...);
- a ```json block right after a run block (only blank lines between) is that block's output: the real output
  must parse as JSON with the same keys at every level (values may differ: ids, times, scores).

The service is `python -m app` on a spare port, serving a copy of var/ (the registry, its artifacts and the
database `make run` trained and loaded), so the commands may promote, ingest and score without touching var/.
Blocks talk to http://127.0.0.1:8000 as a reader would; that address is rewritten to the spare port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED_URL = "http://127.0.0.1:8000"
RUN_LANGUAGES = {"bash", "python"}
SKIP = re.compile(r"<!--\s*docs-check:\s*skip\s+(?P<reason>.+?)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
BLOCK_TIMEOUT_SECONDS = 300
PAGES_AT_ONCE = 2  # the cores of the machines here

app = typer.Typer(add_completion=False)


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip: str | None = None
    output: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a page that run, each with its skip reason and the output shown after it."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    last_closed: Block | None = None  # the run block whose closing fence is the last non-blank line seen
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            if lines[i].strip():
                last_closed = None
            i += 1
            continue
        indent, lang = len(opening["indent"]), opening["lang"]
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        code = "\n".join(line[indent:] for line in lines[i + 1 : end])
        if lang == "json" and last_closed is not None:
            last_closed.output = code
            last_closed = None
        elif lang in RUN_LANGUAGES:
            before = lines[i - 1] if i else ""
            skip = SKIP.search(before)
            block = Block(page, i + 1, lang, code, skip["reason"] if skip else None)
            found.append(block)
            last_closed = block
        else:
            last_closed = None
        i = end + 1
    return found


def shape_differences(shown: Any, real: Any, path: str = "$") -> list[str]:
    """Where the real output's keys differ from the shown output's (values are free to differ)."""
    if isinstance(shown, dict):
        if not isinstance(real, dict):
            return [f"{path}: shown an object, got {type(real).__name__}"]
        differences = []
        if missing := shown.keys() - real.keys():
            differences.append(f"{path}: keys shown but not returned: {sorted(missing)}")
        if added := real.keys() - shown.keys():
            differences.append(f"{path}: keys returned but not shown: {sorted(added)}")
        for key in shown.keys() & real.keys():
            differences += shape_differences(shown[key], real[key], f"{path}.{key}")
        return differences
    if isinstance(shown, list):
        if not isinstance(real, list):
            return [f"{path}: shown a list, got {type(real).__name__}"]
        differences = []
        for index, (shown_item, real_item) in enumerate(zip(shown, real, strict=False)):
            differences += shape_differences(shown_item, real_item, f"{path}[{index}]")
        return differences
    return []


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def copy_of_var(source: Path, target: Path) -> None:
    """var/ copied, its registry pointed at the copy's artifacts so nothing a command does reaches var/."""
    shutil.copytree(source, target)
    old, new = source.resolve().as_uri(), target.resolve().as_uri()
    with sqlite3.connect(target / "mlflow.db") as registry:
        tables = [row[0] for row in registry.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in registry.execute(f'PRAGMA table_info("{table}")').fetchall():
                name, kind = column[1], column[2].upper()
                if "CHAR" in kind or "TEXT" in kind:
                    registry.execute(
                        f'UPDATE "{table}" SET "{name}" = REPLACE("{name}", ?, ?) WHERE "{name}" LIKE ?',
                        (old, new, f"%{old}%"),
                    )


def service_environment(var: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "CLM_HOST": "127.0.0.1",
        "CLM_PORT": str(port),
        "MLFLOW_TRACKING_URI": f"sqlite:///{var / 'mlflow.db'}",
        "CLM_ARTIFACT_ROOT": str(var / "mlartifacts"),
        "CLM_DATABASE_URL": f"sqlite:///{var / 'clm.db'}",
        "CLM_DATA_DIR": os.environ.get("CLM_DATA_DIR", str(ROOT.parent / "shared" / "data")),
    }


@contextmanager
def service(env: dict[str, str], log: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{env['CLM_PORT']}"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the service stopped (exit {process.returncode}); its log: {log}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the service was not ready within 180 s; its log: {log}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class PageReport:
    ran: int = 0
    failures: int = 0
    skipped: int = 0


def check_page(page: Path, url: str, env: dict[str, str]) -> PageReport:
    report, lines = PageReport(), []
    for block in blocks_of(page):
        if block.skip:
            report.skipped += 1
            lines.append(f"skip  {block.where}  ({block.skip})")
            continue
        started = time.monotonic()
        problems = run_block(block, url, env)
        report.ran += 1
        report.failures += bool(problems)
        lines.append(f"{'FAIL' if problems else 'ok'}    {block.where}  {time.monotonic() - started:.1f} s")
        lines += [f"      {problem}" for problem in problems]
    if lines:
        typer.echo("\n".join(lines))
    return report


def run_block(block: Block, url: str, env: dict[str, str]) -> list[str]:
    """The problems with one block's run: its exit status, and its output against the one shown."""
    code = block.code.replace(DOCUMENTED_URL, url)
    command = (
        ["bash", "-euo", "pipefail", "-c", code] if block.lang == "bash" else [sys.executable, "-c", code]
    )
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        return [f"did not finish within {BLOCK_TIMEOUT_SECONDS} s"]
    if done.returncode != 0:
        return [f"exit status {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"]
    if block.output is None:
        return []
    try:
        real = json.loads(done.stdout)
    except ValueError:
        return [f"the output shown is JSON, the real one is not:\n{done.stdout[:2000]}"]
    return shape_differences(json.loads(block.output), real)


@app.command()
def main(
    var: Annotated[
        Path, typer.Option(help="The var/ that `make run` trained and loaded (copied, never written)")
    ] = ROOT / "var",
    serve: Annotated[bool, typer.Option(help="Only serve the copy until interrupted")] = False,
) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clm-docs-check-") as scratch:
        copy = Path(scratch) / "var"
        copy_of_var(var, copy)
        env = service_environment(copy, spare_port())
        with service(env, Path(scratch) / "service.log") as url:
            if serve:
                typer.echo(
                    f"serving a copy of {var} at {url} (replace {DOCUMENTED_URL} with it); Ctrl-C or SIGTERM stops"
                )
                # SIGTERM too (a background job ignores Ctrl-C): leave through `service`, which stops the app
                signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    return
            # Pages run side by side (their blocks in order): most of a block's time is a `clm` process
            # importing MLflow, not the service's work.
            with ThreadPoolExecutor(max_workers=PAGES_AT_ONCE) as pool:
                reports = list(pool.map(lambda page: check_page(page, url, env), doc_pages()))
    ran = sum(report.ran for report in reports)
    failures = sum(report.failures for report in reports)
    skipped = sum(report.skipped for report in reports)
    typer.echo(
        f"{ran} blocks run, {failures} failed, {skipped} skipped, in {time.monotonic() - started:.0f} s"
    )
    raise typer.Exit(1 if failures else 0)


if __name__ == "__main__":
    app()
