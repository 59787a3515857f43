"""The OpenAPI schema with this deployment's limits in it.

The limits are settings (app.limits), so the route declarations cannot carry them; they are
written into the generated schema once, from the same declarations the handlers check. So is
the rating scale an event must respect, which is the served version's: the schema is made
again after every swap."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.http.api_keys import OPEN, OPEN_PREFIXES
from app.limits import LIMITS, BodyField
from app.serving.versions import VersionOwner
from app.settings import Settings


def install_openapi_with_limits(
    app: FastAPI, settings: Settings, versions: VersionOwner[Any]
) -> None:
    generate = app.openapi  # FastAPI's own generator; it caches in app.openapi_schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()  # generate() stores what it returns
            _add_limits(schema, settings)
            _add_rating_scale(schema, versions)
            if settings.api_key:
                _add_api_keys(schema)
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]
    versions.on_swap.append(lambda _: setattr(app, "openapi_schema", None))


def _add_rating_scale(schema: dict[str, Any], versions: VersionOwner[Any]) -> None:
    if versions.served is None:
        return
    low, high = versions.served.loaded.manifest.rating_range
    rating = schema["components"]["schemas"]["Event"]["properties"]["rating"]
    rating.update({"minimum": low, "maximum": high})


def _add_api_keys(schema: dict[str, Any]) -> None:
    """RECSYS_API_KEY set: every operation outside the open paths takes a key (either header)
    and may answer 401."""
    schema["components"]["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "Bearer": {"type": "http", "scheme": "bearer"},
    }
    refusal = {
        "description": "no API key, or a wrong one (X-Auth-Required: api-key)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for path, operations in schema["paths"].items():
        if path in OPEN or path.startswith(OPEN_PREFIXES):
            continue
        for operation in operations.values():
            operation["security"] = [{"ApiKey": []}, {"Bearer": []}]
            operation["responses"].setdefault("401", refusal)


def _add_limits(schema: dict[str, Any], settings: Settings) -> None:
    components = schema["components"]["schemas"]
    for limit in LIMITS:
        for spot in limit.shown_at:
            if isinstance(spot, BodyField):
                target = components[spot.component]["properties"][spot.name]
            else:
                operation = schema["paths"][spot.path][spot.method]
                parameter = next(p for p in operation["parameters"] if p["name"] == spot.name)
                target = parameter["schema"]
            target[limit.keyword] = limit.value(settings)
