"""`python -m app`: serve with uvicorn on the configured interface, port and number of workers."""

from __future__ import annotations

import os
import tempfile

import uvicorn

from app.settings import get_settings


def main() -> None:
    settings = get_settings()
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several processes must pool their metrics, or /metrics shows one worker's share.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="clm-prometheus-")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,  # the service writes its own access log, with the request id
        log_config=None,
    )


if __name__ == "__main__":
    main()
