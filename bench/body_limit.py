"""Measure what a 50 MB body costs a real uvicorn worker before it is refused (issue 14: limits before work).

Starts `python -m app` (no models: the refusal needs none), sends POST /v1/churn/score with a 50 MB body
(without a key; with a key, by Content-Length; with a key, chunked without a length) over a raw socket, and
prints the time until the status line arrived and the worker's resident memory before and after (peak too).

    PYTHONPATH=$PWD .venv/bin/python bench/body_limit.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

BODY_BYTES = 50 * 1024 * 1024
CHUNK = 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def memory_kib(pid: int) -> tuple[int, int]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def send(port: int, key: str | None, chunked: bool) -> tuple[float, str]:
    sock = socket.create_connection(("127.0.0.1", port))
    head = "POST /v1/churn/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if key:
        head += f"X-API-Key: {key}\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {BODY_BYTES}\r\n"
    started = time.perf_counter()
    sock.sendall((head + "\r\n").encode())

    def upload() -> None:
        chunk = b" " * CHUNK
        try:
            for _ in range(BODY_BYTES // CHUNK):
                sock.sendall(f"{CHUNK:x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close the connection once it has answered

    writer = threading.Thread(target=upload, daemon=True)
    writer.start()
    status = sock.recv(4096).split(b"\r\n", 1)[0].decode()
    elapsed = time.perf_counter() - started
    writer.join(30)
    sock.close()
    return elapsed, status


def main() -> None:
    port = free_port()
    env = {
        **os.environ,
        "CLM_PORT": str(port),
        "CLM_MODELS": "[]",
        "CLM_API_KEYS": json.dumps({"k": ["score"]}),
        "CLM_DATABASE_URL": "sqlite:////tmp/clm-body-limit.db",
        "CLM_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen([sys.executable, "-m", "app"], env=env)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        before, _ = memory_kib(server.pid)
        print(f"worker RSS before: {before / 1024:.1f} MiB")
        for label, key, chunked in [
            ("no key, Content-Length", None, False),
            ("key, Content-Length", "k", False),
            ("key, chunked", "k", True),
        ]:
            elapsed, status = send(port, key, chunked)
            rss, peak = memory_kib(server.pid)
            print(
                f"{label:24s} {status:30s} answered in {elapsed * 1000:7.1f} ms; RSS {rss / 1024:.1f} MiB "
                f"(+{(rss - before) / 1024:.1f}), peak {peak / 1024:.1f} MiB"
            )
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
