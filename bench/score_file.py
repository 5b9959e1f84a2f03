"""`clm score file` measured: rows/s on the 41,188 bank-marketing contacts with and without reasons, and peak
memory (RSS) on a 1,000,000-row file made by repeating them.

Each run is the real command in its own process, so its peak RSS is that process's alone (wait4's
ru_maxrss). The input is the outbound line's records as a CRM exports them: API field names, `contact_id` the
row number. Needs the served clm-leads-outbound version (`make train`). Writes bench-results/score_file.json.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from training.data import id_field, load_dataset
from training.spec import find_spec

DATA_DIR = Path(os.environ.get("CLM_DATA_DIR", "../shared/data"))
MODEL = "clm-leads-outbound"
BIG_ROWS = int(os.environ.get("CLM_BENCH_BIG_ROWS", "1000000"))
BIN = Path(sys.executable).parent


def bank_records(path: Path) -> int:
    """The 41,188 contacts as API records in a CSV file; returns the row count."""
    spec = find_spec("leads", "outbound")
    dataset = load_dataset(spec, DATA_DIR)
    frame = dataset.features.copy()
    frame.insert(0, id_field(spec), dataset.ids.to_numpy())
    frame.to_csv(path, index=False)
    return len(frame)


def repeated(source: Path, path: Path, rows: int) -> None:
    """`rows` rows made by repeating the source's, written a copy at a time (never all in memory)."""
    lines = source.read_text().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    with path.open("w") as out:
        out.write(header)
        left = rows
        while left:
            out.writelines(body[:left])
            left -= min(left, len(body))


def run(source: Path, out: Path, *extra: str) -> dict[str, Any]:
    """One `clm score file` process: its wall time, rows/s as it prints them, and its peak RSS."""
    command = [str(BIN / "clm"), "score", "file", str(source), str(out), "--model", MODEL, *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    output = process.stdout.read() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {output}")
    match = re.search(r"\(([\d,]+) rows/s\)", output)
    print(f"  {output.strip()}", flush=True)
    return {
        "command": " ".join(["clm", *command[1:]]),
        "rows_per_s": int(match.group(1).replace(",", "")) if match else None,
        "wall_s": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
    }


def main() -> None:
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "model": MODEL,
    }
    with tempfile.TemporaryDirectory() as tmp:
        bank, big = Path(tmp) / "bank.csv", Path(tmp) / "bank-1m.csv"
        rows = bank_records(bank)
        print(f"bank marketing: {rows:,} rows", flush=True)
        results["bank"] = run(bank, Path(tmp) / "scores.parquet")
        results["bank_reasons"] = run(bank, Path(tmp) / "scores.parquet", "--explain")
        repeated(bank, big, BIG_ROWS)
        print(
            f"{BIG_ROWS:,} rows (the bank file repeated), {big.stat().st_size / 2**20:.0f} MiB:", flush=True
        )
        results["big"] = run(big, Path(tmp) / "big.parquet")
        results["big_reasons"] = run(big, Path(tmp) / "big.parquet", "--explain")
    results["big"]["rows"] = results["big_reasons"]["rows"] = BIG_ROWS
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "score_file.json").write_text(json.dumps(results, indent=2))
    print(f"written to {out / 'score_file.json'}")


if __name__ == "__main__":
    main()
