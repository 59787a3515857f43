"""Domain errors raised by the core, mapped to JSON HTTP answers once, in create_app."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import Send

from app.responses import send_json
from artifact.jsonsafe import replace_nonfinite

MAX_LISTED_IDS = 20


class ServiceError(Exception):
    """Base of the errors a caller can cause or see; `status` is the HTTP status."""

    status = 500
    headers: dict[str, str] | None = None

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail}

    async def send(self, send: Send) -> None:
        """Answer with this error from raw ASGI code (a middleware), as the handler would."""
        headers = ((k.lower().encode(), v.encode()) for k, v in (self.headers or {}).items())
        await send_json(send, orjson.dumps(self.body()), self.status, headers)


class ModelNotReady(ServiceError):
    status = 503


class StoreUnavailable(ServiceError):
    """A write the event store did not take; the detail names the store and why. Nothing of
    the request was stored; it is safe to send again (`Retry-After`)."""

    status = 503
    headers = {"Retry-After": "2"}


class RateLimited(ServiceError):
    """Over this client's rate limit (`app.quotas`): nothing of the request was stored."""

    status = 429

    def __init__(self, retry_after: int):
        super().__init__(f"over this client's rate limit: send again in {retry_after} s")
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "retry_after": self.retry_after}


class NoSuchVersion(ServiceError):
    """An admin asked for a version directory that does not exist."""

    status = 404


class VersionRefused(ServiceError):
    """A version that cannot be served; the detail names the file (relative to the models
    directory) and the reason. The version served before keeps serving."""

    status = 409

    def __init__(self, version: int, reason: str):
        super().__init__(f"version {version} refused: {reason}")
        self.version, self.reason = version, reason


class AdminDisabled(ServiceError):
    """No RECSYS_ADMIN_TOKEN: the admin routes do not exist."""

    status = 404

    def __init__(self) -> None:
        super().__init__("Not Found")


class Unauthorized(ServiceError):
    status = 401
    headers = {"WWW-Authenticate": "Bearer"}

    def __init__(self) -> None:
        super().__init__("missing or wrong bearer token")


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

    def body(self) -> dict[str, Any]:
        return {
            "detail": self.detail,
            "unknown_user_ids": self.user_ids[:MAX_LISTED_IDS],
            "unknown_item_ids": self.item_ids[:MAX_LISTED_IDS],
        }


def _listed(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:MAX_LISTED_IDS])
    return shown + (f" and {len(ids) - MAX_LISTED_IDS} more" if len(ids) > MAX_LISTED_IDS else "")


def install_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own handler, except that an input of NaN or 1e999 (Python's json reads them)
        # is echoed as a string: strict JSON has no such numbers, and encoding them failed (500).
        assert isinstance(exc, RequestValidationError)
        detail = replace_nonfinite(jsonable_encoder(exc.errors()), str)
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(ServiceError, handle)
    app.add_exception_handler(RequestValidationError, invalid)
