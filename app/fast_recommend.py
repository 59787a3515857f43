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

What it parses is read off the declared route at import: every query parameter of the route and
of its filter dependency, its default and its bounds (and the configured limit on `n`,
`app.limits.MAX_N`). Both paths then call the same `app.routes.recommend.ranking` with the same
names, so a parameter added to the route is parsed here too, or, of a kind this module cannot
parse plainly, fails the import instead of silently keeping a default.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import ServiceError
from app.limits import LIMITS, QueryParameter
from app.responses import send_json
from app.routes.params import filter_of
from app.routes.recommend import ranking, router
from app.schemas import MAX_ID_LENGTH
from app.settings import Settings
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


class NotPlain(Exception):
    """A query this parser leaves to FastAPI (which validates it and answers the error)."""


@dataclass(frozen=True)
class Parameter:
    """One declared query parameter: its default and how to read a plain value of it."""

    name: str
    default: Any
    read: Callable[[str, Settings], Any]  # raises NotPlain


def _reader(name: str, annotation: Any, metadata: list[Any]) -> Callable[[str, Settings], Any]:
    """How to read a declared parameter plainly, from its type and bounds (and a limit from
    settings that bounds it further); an import error for a kind this module cannot read."""
    bounds = {
        k: getattr(m, k) for m in metadata for k in ("ge", "le", "max_length") if hasattr(m, k)
    }
    limit = next(
        (
            lim
            for lim in LIMITS
            if QueryParameter(PATH, "get", name) in lim.shown_at and lim.bounds == "value"
        ),
        None,
    )
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kind = (
        next(a for a in typing.get_args(annotation) if a is not type(None))
        if optional
        else annotation
    )
    if kind is bool:
        return lambda value, _: _bool(value)
    if kind is int:
        low, high = bounds.get("ge", -(10**9)), bounds.get("le", 10**9)
        if limit is not None:
            return lambda value, settings: _int(value, low, min(high, limit.value(settings)))
        return lambda value, _: _int(value, low, high)
    if kind is float:
        return lambda value, _: _float(
            value, bounds.get("ge", -math.inf), bounds.get("le", math.inf)
        )
    if kind is str:
        longest = bounds.get("max_length", 10**6)
        return lambda value, _: _text(value, longest)
    if typing.get_origin(kind) is typing.Literal:
        allowed = set(typing.get_args(kind))
        return lambda value, _: _choice(value, allowed)
    raise TypeError(f"{PATH}: the raw path cannot read query parameter {name!r} ({annotation})")


def _parameters(dependant: Dependant) -> list[Parameter]:
    return [
        Parameter(
            f.alias,
            f.field_info.get_default(),
            _reader(f.alias, f.field_info.annotation, f.field_info.metadata),
        )
        for f in dependant.query_params
    ]


# The route's own query parameters, then its filter dependency's (`app.routes.params`).
(_FILTER,) = DECLARED.dependant.dependencies
ROUTE = _parameters(DECLARED.dependant)
FILTER = _parameters(_FILTER)
PARAMETERS = {p.name: p for p in ROUTE + FILTER}
if missing := {p.name for p in ROUTE} - set(inspect.signature(ranking).parameters):
    raise TypeError(f"{PATH}: `ranking` takes no {sorted(missing)}, which the route declares")


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
            asked = parse(scope["query_string"], service.settings)
            where = filter_of(**{p.name: asked.pop(p.name) for p in FILTER})
            body = ranking(service, served, user_id, where, **asked)
        except (NotPlain, ServiceError):
            await self.app(scope, receive, send)
            return
        scope["route"] = DECLARED  # what the metrics and the access log name it by
        await send_json(send, body)


def parse(query: bytes, settings: Settings) -> dict[str, Any]:
    """Every declared parameter's value, by its declared name (the default where the query
    leaves it out), or NotPlain when any parameter is not plainly valid. Unknown parameters are
    ignored and a repeated one counts once, its last value, as FastAPI does."""
    asked = {name: p.default for name, p in PARAMETERS.items()}
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
    for key, value in dict(pairs).items():
        declared = PARAMETERS.get(key)
        if declared is not None:
            asked[key] = declared.read(value, settings)
    return asked


def _bool(value: str) -> bool:
    flag = _BOOLS.get(value.lower())
    if flag is None:
        raise NotPlain
    return flag


def _int(value: str, low: int, high: int) -> int:
    if not _INT.match(value):
        raise NotPlain
    number = int(value)
    if not low <= number <= high:
        raise NotPlain
    return number


def _float(value: str, low: float, high: float) -> float:
    if not _FLOAT.match(value):
        raise NotPlain
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise NotPlain
    return number


def _text(value: str, longest: int) -> str:
    if len(value) > longest:
        raise NotPlain
    return value


def _choice(value: str, allowed: set[Any]) -> str:
    if value not in allowed:
        raise NotPlain
    return value
