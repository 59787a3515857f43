"""Domain errors raised by the core, mapped to JSON HTTP answers once, in create_app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.jsonsafe import replace_nonfinite

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


def too_large(loc: tuple[str, ...], value: int, limit: int) -> RequestValidationError:
    """A 422 like pydantic's own for a number over a limit that is a setting (RECSYS_MAX_N), so
    the answer has the same shape as every other field error."""
    return RequestValidationError(
        [
            {
                "type": "less_than_equal",
                "loc": loc,
                "msg": f"Input should be less than or equal to {limit}",
                "input": str(value) if loc[0] == "query" else value,
                "ctx": {"le": limit},
            }
        ]
    )


def too_long(loc: tuple[str, ...], length: int, limit: int) -> RequestValidationError:
    """A 422 like pydantic's own for a list longer than a limit that is a setting."""
    return RequestValidationError(
        [
            {
                "type": "too_long",
                "loc": loc,
                "msg": f"List should have at most {limit} items, not {length}",
                "ctx": {"field_type": "List", "max_length": limit, "actual_length": length},
            }
        ]
    )


def _listed(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:MAX_LISTED_IDS])
    return shown + (f" and {len(ids) - MAX_LISTED_IDS} more" if len(ids) > MAX_LISTED_IDS else "")


def install_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own handler, except that an input of NaN or 1e999 (Python's json reads them)
        # is echoed as a string: strict JSON has no such numbers, and encoding them failed (500).
        assert isinstance(exc, RequestValidationError)
        detail = replace_nonfinite(jsonable_encoder(exc.errors()), str)
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(ServiceError, handle)
    app.add_exception_handler(RequestValidationError, invalid)
