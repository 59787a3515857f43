"""Domain errors raised by the core, mapped to JSON HTTP answers once, in create_app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

MAX_LISTED_IDS = 20


class ServiceError(Exception):
    """Base of the errors a caller can cause or see; `status` is the HTTP status."""

    status = 500

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    def body(self) -> dict:
        return {"detail": self.detail}


class ModelNotReady(ServiceError):
    status = 503


class UnknownUser(ServiceError):
    status = 404

    def __init__(self, user_id: str):
        super().__init__(f"unknown user_id {user_id!r}")
        self.user_id = user_id


class UnknownIds(ServiceError):
    """Some /predict ids are not in the served model; nothing is predicted."""

    status = 404

    def __init__(self, user_ids: list[str], item_ids: list[str]):
        parts = [
            f"{len(ids)} unknown {kind}: {_listed(ids)}"
            for kind, ids in (("user_id", user_ids), ("item_id", item_ids))
            if ids
        ]
        super().__init__("; ".join(parts))
        self.user_ids, self.item_ids = user_ids, item_ids

    def body(self) -> dict:
        return {
            "detail": self.detail,
            "unknown_user_ids": self.user_ids[:MAX_LISTED_IDS],
            "unknown_item_ids": self.item_ids[:MAX_LISTED_IDS],
        }


class TooManyInstances(ServiceError):
    status = 413


def _listed(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:MAX_LISTED_IDS])
    return shown + (f" and {len(ids) - MAX_LISTED_IDS} more" if len(ids) > MAX_LISTED_IDS else "")


def install_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return JSONResponse(exc.body(), status_code=exc.status)

    app.add_exception_handler(ServiceError, handle)
