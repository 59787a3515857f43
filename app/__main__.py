"""`python -m app`: serve with uvicorn, configured by RECSYS_* settings (used by `recsys serve`)."""

from __future__ import annotations

import copy
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from app.settings import Settings


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's own logging set-up, plus the service's `app.*` loggers on the same handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["app"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def serve(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
    )


if __name__ == "__main__":
    serve()
