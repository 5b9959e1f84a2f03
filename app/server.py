"""Serving: `python -m app` runs main() with uvicorn on the configured interface, port and number of workers.

With several workers, each worker process listens on its own socket bound with SO_REUSEPORT, so the kernel
spreads new connections over the workers. uvicorn's own `workers=` shares one socket, and the first worker to
wake accepts every connection waiting: the 8 keep-alive connections of a client (a call-centre system's pool,
the benchmark) often all landed on one worker while the other idled (measured: 258 against 735 req/s for the
same load, depending on where the connections went). A worker that dies is started again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from prometheus_client import multiprocess

from app.observability import configure_logging
from app.settings import Settings, get_settings

log = logging.getLogger("clm.supervisor")

SHUTDOWN_SECONDS = 30.0  # each worker flushes its prediction log on the way out
# A worker that dies this soon after starting failed to start (port taken, no model, bad settings): starting it
# again would fail again, so the service stops with an error instead.
STARTUP_SECONDS = 60.0


def main() -> None:
    settings = get_settings()
    refused = settings.unsafe_binding()
    if refused:
        # Before any worker or model: the service never listens beyond loopback with the public demo key.
        sys.stderr.write(f"clm: {refused}\n")
        sys.exit(2)
    if settings.workers == 1:
        uvicorn.Server(_config(settings)).run()
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several processes must pool their metrics, or /metrics shows one worker's share.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="clm-prometheus-")
    configure_logging(settings.log_level)
    sys.exit(_supervise(settings))


def _config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        access_log=False,  # the service writes its own access log, with the request id
        log_config=None,
    )


def _serve_one_worker() -> None:
    settings = get_settings()
    listener = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((settings.host, settings.port))
    listener.listen(2048)
    uvicorn.Server(_config(settings)).run(sockets=[listener])


def _supervise(settings: Settings) -> int:
    """Run the workers until SIGTERM or SIGINT; the exit code is 1 when a worker failed to start."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start(name: str) -> tuple[BaseProcess, float]:
        worker = context.Process(target=_serve_one_worker, name=name)
        worker.start()
        return worker, time.monotonic()

    workers = [start(f"worker-{i}") for i in range(settings.workers)]
    log.info("serving on %s:%d with %d workers", settings.host, settings.port, settings.workers)
    code = 0
    while not stopping:
        time.sleep(0.5)
        for index, (worker, started) in enumerate(workers):
            if worker.is_alive() or stopping:
                continue
            multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
            if time.monotonic() - started < STARTUP_SECONDS:
                log.error("worker %s failed to start (exit code %s); stopping", worker.pid, worker.exitcode)
                stopping, code = True, 1
                break
            log.error("worker %s exited with code %s; starting another", worker.pid, worker.exitcode)
            workers[index] = start(worker.name)
    for worker, _ in workers:
        if worker.is_alive() and worker.pid is not None:
            os.kill(
                worker.pid, signal.SIGTERM
            )  # uvicorn's graceful shutdown: in-flight requests, then lifespan
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    for worker, _ in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
    return code
