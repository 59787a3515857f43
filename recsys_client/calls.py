"""Each route as a `Call` (method, path, query, body, the model its answer parses into, whether
it may be retried), and the retry rule; `Client` and `AsyncClient` only send them."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypedDict, TypeVar, cast
from urllib.parse import quote

import pydantic

from recsys_client import models as m
from recsys_client.errors import Invalid, RateLimited, RecsysError, Unavailable, error_for

T = TypeVar("T")
Id = str | int


class Filters(TypedDict, total=False):
    """Which items may come back (all given must hold)."""

    genres: list[str]
    exclude_genres: list[str]
    year_min: int
    year_max: int
    exclude_items: list[Id]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    model: type[T] | None  # None: the answer's JSON as it is
    params: dict[str, Any] | None = None
    json: Any = None
    safe: bool = False  # a read, or a write the service stores once however often it arrives


def parse(call: Call[T], status: int, body: Any, retry_after: float | None) -> T:
    """The answer as `call.model`.

    Raises:
        RecsysError: a status other than 200 (its typed subclass).
    """
    if status != 200:
        raise error_for(status, body, retry_after)
    if call.model is None:
        return cast(T, body)
    return cast(T, cast(Any, call.model).model_validate(body))


@dataclass
class Retry:
    """Safe calls are retried on 503, 429 and failed connections: at most `attempts` times in
    all, waiting the answer's Retry-After where it gives one, else exponential backoff with full
    jitter (`base` * 2**n seconds, at most `cap`)."""

    attempts: int = 4
    base: float = 0.2
    cap: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, call: Call[Any], attempt: int, error: RecsysError) -> float | None:
        """Seconds to wait before attempt `attempt + 1` (None: give up and raise)."""
        if not call.safe or attempt + 1 >= self.attempts:
            return None
        if isinstance(error, RateLimited):
            return error.retry_after + self.rng.uniform(0, self.base)
        if isinstance(error, Unavailable):
            if error.retry_after is not None:
                return error.retry_after + self.rng.uniform(0, self.base)
            return self.rng.uniform(0, min(self.cap, self.base * 2**attempt))
        return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _body(model: type[pydantic.BaseModel], **fields: Any) -> dict[str, Any]:
    """The request body, checked with the service's own model first.

    Raises:
        Invalid: a field the service would refuse (the same rule, before sending).
    """
    try:
        built = model(**{k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as err:
        errors = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in err.errors()
        ]
        raise Invalid(422, str(err), {"detail": errors}) from None
    return built.model_dump(mode="json", exclude_unset=True)


def _query(filters: Filters | None = None, **params: Any) -> dict[str, Any]:
    out = {k: v for k, v in params.items() if v is not None}
    for key, value in (filters or {}).items():
        out[key] = ",".join(str(v) for v in value) if isinstance(value, list) else value
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in out.items()}


def _p(value: Id) -> str:
    return quote(str(value), safe="")


By = Literal["default", "rating"]


def recommend(
    user_id: Id,
    n: int = 10,
    *,
    exclude_seen: bool | None = None,
    by: By | None = None,
    fallback: bool | None = None,
    diversity: float | None = None,
    explain: bool | None = None,
    filters: Filters | None = None,
) -> Call[m.RecommendResponse]:
    params = _query(
        filters,
        n=n,
        exclude_seen=exclude_seen,
        by=by,
        fallback=fallback,
        diversity=diversity,
        explain=explain,
    )
    return Call("GET", f"/recommend/{_p(user_id)}", m.RecommendResponse, params, safe=True)


def recommend_many(
    user_ids: Iterable[Id],
    n: int = 10,
    *,
    exclude_seen: bool | None = None,
    by: By | None = None,
    fallback: bool | None = None,
    diversity: float | None = None,
    filters: Filters | None = None,
) -> Call[m.RecommendBatchResponse]:
    body = _body(
        m.RecommendBatchRequest,
        user_ids=list(user_ids),
        n=n,
        exclude_seen=exclude_seen,
        by=by,
        fallback=fallback,
        diversity=diversity,
        **(filters or {}),
    )
    return Call("POST", "/recommend", m.RecommendBatchResponse, json=body, safe=True)


def predict(pairs: Iterable[tuple[Id, Id]]) -> Call[m.PredictResponse]:
    instances = [{"user_id": u, "item_id": i} for u, i in pairs]
    body = _body(m.PredictRequest, instances=instances)
    return Call("POST", "/predict", m.PredictResponse, json=body, safe=True)


def similar(
    item_id: Id, n: int = 10, *, user_id: Id | None = None, filters: Filters | None = None
) -> Call[m.SimilarResponse]:
    params = _query(filters, n=n, user_id=user_id)
    return Call("GET", f"/similar/{_p(item_id)}", m.SimilarResponse, params, safe=True)


def rank(
    user_id: Id,
    item_ids: Iterable[Id],
    *,
    by: By | None = None,
    fallback: bool | None = None,
    explain: bool | None = None,
) -> Call[m.RankResponse]:
    body = _body(
        m.RankRequest,
        user_id=user_id,
        item_ids=list(item_ids),
        by=by,
        fallback=fallback,
        explain=explain,
    )
    return Call("POST", "/rank", m.RankResponse, json=body, safe=True)


def popular(
    n: int = 10,
    *,
    window: str | None = None,
    user_id: Id | None = None,
    filters: Filters | None = None,
) -> Call[m.PopularResponse]:
    params = _query(filters, n=n, window=window, user_id=user_id)
    return Call("GET", "/popular", m.PopularResponse, params, safe=True)


def events(batch: list[dict[str, Any]]) -> Call[m.EventsResponse]:
    """One batch; every event carries an `event_id` (`event_body`), so a retried batch is stored
    once."""
    return Call("POST", "/events", m.EventsResponse, json={"events": batch}, safe=True)


def event_body(event: m.Event | Mapping[str, Any], index: int) -> dict[str, Any]:
    """The event as the body carries it, checked with the service's model, with an `event_id`
    where it has none (a random one: sending the same batch again stores it once).

    Raises:
        Invalid: an event the service would refuse (`field` names it: `events.<index>.<field>`).
    """
    try:
        checked = event if isinstance(event, m.Event) else m.Event.model_validate(event)
    except pydantic.ValidationError as err:
        errors = [
            {"loc": ["body", "events", index, *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in err.errors()
        ]
        raise Invalid(422, str(err), {"detail": errors}) from None
    body = checked.model_dump(mode="json", exclude_none=True)
    body.setdefault("event_id", uuid.uuid4().hex)
    return body


def put_item(
    item_id: Id,
    *,
    title: str | None = None,
    genres: list[str] | None = None,
    year: int | None = None,
) -> Call[m.ItemInfo]:
    body = _body(m.ItemBody, title=title, genres=genres, year=year)
    return Call("PUT", f"/items/{_p(item_id)}", m.ItemInfo, json=body, safe=True)


def item(item_id: Id) -> Call[m.CatalogueItem]:
    return Call("GET", f"/items/{_p(item_id)}", m.CatalogueItem, safe=True)


def search_items(q: str, n: int | None = None) -> Call[m.ItemSearch]:
    return Call("GET", "/items", m.ItemSearch, _query(q=q, n=n), safe=True)


def genres() -> Call[m.Genres]:
    return Call("GET", "/genres", m.Genres, safe=True)


def user_ratings(
    user_id: Id, *, limit: int | None = None, offset: int | None = None
) -> Call[m.UserRatings]:
    params = _query(limit=limit, offset=offset)
    return Call("GET", f"/users/{_p(user_id)}/ratings", m.UserRatings, params, safe=True)


def forget_user(user_id: Id) -> Call[m.Forgotten]:
    return Call("DELETE", f"/users/{_p(user_id)}", m.Forgotten)


def models() -> Call[m.ModelInfo]:
    return Call("GET", "/models", m.ModelInfo, safe=True)


def ready() -> Call[m.Readiness]:
    return Call("GET", "/ready", m.Readiness)  # a 503 here is the answer, not a retry


def health() -> Call[m.Health]:
    return Call("GET", "/health", m.Health, safe=True)


def reload() -> Call[dict[str, Any]]:
    return Call("POST", "/admin/reload", None)


def pin_version(version: int) -> Call[dict[str, Any]]:
    return Call("POST", f"/admin/models/{int(version)}", None)


def put_experiment(
    name: str,
    method: Literal["ab", "interleave"],
    variants: Mapping[str, int],
    split: Mapping[str, float] | None = None,
) -> Call[m.ExperimentReport]:
    body = _body(
        m.ExperimentBody,
        method=method,
        split=dict(split) if split else None,
        variants={k: {"version": v} for k, v in variants.items()},
    )
    return Call("PUT", f"/admin/experiments/{_p(name)}", m.ExperimentReport, json=body)


def experiment(name: str) -> Call[m.ExperimentReport]:
    return Call("GET", f"/admin/experiments/{_p(name)}", m.ExperimentReport, safe=True)


def end_experiment(name: str) -> Call[m.ExperimentReport]:
    return Call("DELETE", f"/admin/experiments/{_p(name)}", m.ExperimentReport)


def experiments() -> Call[m.ExperimentList]:
    return Call("GET", "/admin/experiments", m.ExperimentList, safe=True)


def online(window: str | None = None, buckets: int | None = None) -> Call[m.Online]:
    return Call("GET", "/admin/online", m.Online, _query(window=window, buckets=buckets), safe=True)


def openapi() -> Call[dict[str, Any]]:
    return Call("GET", "/openapi.json", None, safe=True)


def events_limit(schema: dict[str, Any]) -> int:
    """The most events one POST /events takes, as the served description says (configured)."""
    try:
        return int(
            schema["components"]["schemas"]["EventsRequest"]["properties"]["events"]["maxItems"]
        )
    except (KeyError, TypeError, ValueError):
        return 1_000
