"""The request limits that are settings, each declared once: which setting holds it, what it
bounds, and where the OpenAPI schema shows it.

A handler calls `check`, which answers a 422 shaped like pydantic's own field errors; the schema
generator (`app.http.openapi`) writes every limit into /openapi.json from the same declaration,
so a client (or a generated client) knows it before it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError

from app.settings import Settings


@dataclass(frozen=True)
class QueryParameter:
    """A query parameter of one operation in the schema."""

    path: str
    method: str
    name: str


@dataclass(frozen=True)
class BodyField:
    """A property of a request body's component schema."""

    component: str
    name: str


@dataclass(frozen=True)
class Limit:
    setting: str  # the Settings field that holds it (RECSYS_<SETTING>)
    bounds: Literal["value", "length"]  # a number's maximum, or a list's maxItems
    shown_at: tuple[QueryParameter | BodyField, ...]

    @property
    def keyword(self) -> str:
        """The JSON Schema keyword that states it."""
        return "maximum" if self.bounds == "value" else "maxItems"

    def value(self, settings: Settings) -> int:
        limit: int = getattr(settings, self.setting)
        return limit

    def check(self, settings: Settings, loc: tuple[str, ...], got: int) -> None:
        """`got` is the number (or the list's length) at `loc`.

        Raises:
            RequestValidationError: over the limit (a 422 naming the field).
        """
        limit = self.value(settings)
        if got <= limit:
            return
        error: dict[str, Any]
        if self.bounds == "value":
            error = {
                "type": "less_than_equal",
                "loc": loc,
                "msg": f"Input should be less than or equal to {limit}",
                "input": str(got) if loc[0] == "query" else got,
                "ctx": {"le": limit},
            }
        else:
            error = {
                "type": "too_long",
                "loc": loc,
                "msg": f"List should have at most {limit} items, not {got}",
                "ctx": {"field_type": "List", "max_length": limit, "actual_length": got},
            }
        raise RequestValidationError([error])


MAX_N = Limit(
    "max_n",
    "value",
    (
        QueryParameter("/recommend/{user_id}", "get", "n"),
        BodyField("RecommendBatchRequest", "n"),
        QueryParameter("/similar/{item_id}", "get", "n"),
        QueryParameter("/popular", "get", "n"),
        QueryParameter("/items", "get", "n"),
    ),
)
MAX_BATCH_USERS = Limit(
    "max_batch_users", "length", (BodyField("RecommendBatchRequest", "user_ids"),)
)
MAX_PREDICT_INSTANCES = Limit(
    "max_predict_instances", "length", (BodyField("PredictRequest", "instances"),)
)
MAX_EVENTS = Limit("max_events", "length", (BodyField("EventsRequest", "events"),))
LIMITS = (MAX_N, MAX_BATCH_USERS, MAX_PREDICT_INSTANCES, MAX_EVENTS)
