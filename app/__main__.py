"""`python -m app`: serve with uvicorn, configured by RECSYS_* settings (used by `recsys serve`)."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from app import metrics_files
from app.settings import Settings


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's own logging set-up, plus the service's `app.*` loggers on the same handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["app"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    # The access log is already JSON (app.observability): written as is, to stdout.
    config["formatters"]["json_lines"] = {"format": "%(message)s"}
    config["handlers"]["json_lines"] = {
        "formatter": "json_lines",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["app.access"] = {
        "handlers": ["json_lines"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def serve(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    if settings.workers > 1 or settings.metrics_dir is not None:
        # Before any worker imports prometheus_client: every worker then writes its values to
        # files there and a scrape of any worker sums them (app.metrics_files).
        metrics_files.prepare(
            settings.metrics_dir or Path(tempfile.mkdtemp(prefix="recsys-metrics-"))
        )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        # SIGTERM: stop accepting, let requests in flight finish (up to this long), then exit.
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        access_log=False,  # replaced by the service's JSON access log (RECSYS_ACCESS_LOG)
    )


if __name__ == "__main__":
    serve()
