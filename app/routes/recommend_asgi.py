"""GET /recommend/{user_id} as a raw ASGI handler: the hot path, outside FastAPI's parameter
machinery.

FastAPI's parameter solving (path, query, dependencies) cost ~38% of this route's handler time
(bench/README.md, "Serving speed"). The route stays declared in `app.routes.recommend`, so
/openapi.json documents it and FastAPI still validates what this module does not understand.
`FastRecommend`, the innermost middleware, parses the query string itself when every parameter
is in a plain, valid form and hands the request on to the routes otherwise (a bad value, a form
it does not parse, a domain error such as an unknown user without fallback). Errors therefore
keep exactly FastAPI's shape and wording, and a test checks that both paths answer the same
bytes for the same query.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import ServiceError
from app.ranking.filters import ItemFilter
from app.ranking.recommend import recommend
from app.routes.params import MAX_LIST_CHARS, YEARS
from app.routes.recommend import router
from app.routes.render import user_ranking
from app.schemas import MAX_ID_LENGTH
from app.state import ServiceState

PATH = "/recommend/{user_id}"
(DECLARED,) = [r for r in router.routes if isinstance(r, APIRoute) and r.path == PATH]
_PATH = re.compile(r"^/recommend/([^/]+)$")  # Starlette's pattern for the declared path
_INT = re.compile(r"^[0-9]{1,9}$")
_FLOAT = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,17})?$")
# The spellings pydantic reads as booleans (lax mode, case-insensitive).
_BOOLS = {
    **dict.fromkeys(("1", "true", "t", "yes", "y", "on"), True),
    **dict.fromkeys(("0", "false", "f", "no", "n", "off"), False),
}
_LISTS = ("genres", "exclude_genres", "exclude_items")
_YEARS = ("year_min", "year_max")


class NotPlain(Exception):
    """A query this parser leaves to FastAPI (which validates it and answers the error)."""


class FastRecommend:
    """Pure ASGI middleware, innermost: GET /recommend/{user_id} with a plain query is parsed,
    ranked and written here; every other request, and any this one does not read plainly, goes
    on to `app` (the routes, where FastAPI validates and answers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = (
            _PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path")
            else None
        )
        if matched is None:
            await self.app(scope, receive, send)
            return
        service: ServiceState = scope["app"].state.service
        served = service.versions.served
        try:
            if served is None:
                raise NotPlain
            user_id = matched.group(1)
            if len(user_id) > MAX_ID_LENGTH:
                raise NotPlain
            asked = parse(scope["query_string"], service.settings.max_n)
            version, live = served.loaded, service.events.live
            explain = asked.pop("explain")
            where = ItemFilter.of(
                asked.pop("genres"),
                asked.pop("exclude_genres"),
                asked.pop("year_min"),
                asked.pop("year_max"),
                asked.pop("exclude_items"),
            )
            ranked = recommend(version, live, user_id, where=where, **asked)
            body = user_ranking(
                version, live, user_id, ranked, explain, where.warnings(live.attributes)
            )
        except (NotPlain, ServiceError):
            await self.app(scope, receive, send)
            return
        scope["route"] = DECLARED  # what the metrics and the access log name it by
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def parse(query: bytes, max_n: int) -> dict[str, Any]:
    """The keyword arguments of `recommend` (plus the filter's fields and `explain`) from a
    query string, or NotPlain when any parameter is not plainly valid. Unknown parameters are
    ignored and a repeated one counts once, its last value, as FastAPI does."""
    asked: dict[str, Any] = {
        "n": 10,
        "exclude_seen": True,
        "by_rating": False,
        "fallback": True,
        "diversity": 0.0,
        "explain": False,
        "genres": [],
        "exclude_genres": [],
        "exclude_items": [],
        "year_min": None,
        "year_max": None,
    }
    if not query:
        return asked
    text = query.decode("latin-1")
    if "%" in text or "+" in text or ";" in text:  # escapes: the standard parser
        try:
            pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise NotPlain from None
    else:  # the usual query, "n=10&exclude_seen=false": split it directly
        pairs = [part.partition("=")[::2] for part in text.split("&") if part]
    fields = dict(pairs)
    for key, value in fields.items():
        if key == "n":
            asked["n"] = _int(value, 1, max_n)
        elif key in ("exclude_seen", "fallback", "explain"):
            flag = _BOOLS.get(value.lower())
            if flag is None:
                raise NotPlain
            asked[key] = flag
        elif key == "by":
            if value not in ("default", "rating"):
                raise NotPlain
            asked["by_rating"] = value == "rating"
        elif key == "diversity":
            if not _FLOAT.match(value):
                raise NotPlain
            number = float(value)
            if not (math.isfinite(number) and 0 <= number <= 1):
                raise NotPlain
            asked["diversity"] = number
        elif key in _LISTS:
            if len(value) > MAX_LIST_CHARS:
                raise NotPlain
            asked[key] = value.split(",") if value else []
        elif key in _YEARS:
            asked[key] = _int(value, YEARS["ge"], YEARS["le"])
    return asked


def _int(value: str, low: int, high: int) -> int:
    if not _INT.match(value):
        raise NotPlain
    number = int(value)
    if not low <= number <= high:
        raise NotPlain
    return number
