"""`python -m app`: serve with uvicorn, configured by RECSYS_* settings (used by `recsys serve`)."""

from __future__ import annotations

import uvicorn

from app.settings import Settings


def serve(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
    )


if __name__ == "__main__":
    serve()
