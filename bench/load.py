"""A small keep-alive HTTP/1.1 load generator on asyncio streams.

Why not httpx: on a 2-core machine the client shares the CPU with the servers it measures, so its own cost per
request must be tiny; prebuilt request bytes over raw streams cost a few microseconds. Request loops are bounded
by a deadline and a count, and target loopback only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    requests: int = 0
    failures: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


def build_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def build_get(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise ConnectionError("chunked responses are not supported by this load generator")
    await reader.readexactly(length)
    return status


async def _worker(
    port: int, requests: itertools.cycle[bytes], deadline: float, budget: list[int], result: LoadResult
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(next(requests))
            try:
                status = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                result.failures += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            result.latencies.append(time.perf_counter() - started)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.requests += 1
            if status >= 400:
                result.failures += 1
    finally:
        writer.close()


async def run_load(
    port: int, requests: Sequence[bytes], concurrency: int, seconds: float, max_requests: int = 1_000_000
) -> LoadResult:
    """Keep `concurrency` connections busy for `seconds` (or `max_requests`), each sending the next request."""
    result = LoadResult()
    cycle = itertools.cycle(requests)
    budget = [max_requests]
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_worker(port, cycle, deadline, budget, result) for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result
