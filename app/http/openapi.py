"""The OpenAPI schema with this deployment's limits in it.

The limits are settings (app.limits), so the route declarations cannot carry them; they are
written into the generated schema once, from the same declarations the handlers check."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.limits import LIMITS, BodyField
from app.settings import Settings


def install_openapi_with_limits(app: FastAPI, settings: Settings) -> None:
    generate = app.openapi  # FastAPI's own generator; it caches in app.openapi_schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_limits(generate(), settings)  # generate() stores what it returns
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


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
