"""The OpenAPI schema with this deployment's limits in it.

The limits are settings (RECSYS_MAX_N, RECSYS_MAX_PREDICT_INSTANCES, RECSYS_MAX_BATCH_USERS),
so the route declarations cannot carry them; they are written into the generated schema once,
so a client (or a generated client) knows them before it is refused."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.settings import Settings


def install_openapi_with_limits(app: FastAPI, settings: Settings) -> None:
    generate = app.openapi  # FastAPI's own generator; it caches in app.openapi_schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_limits(generate(), settings)  # generate() stores what it returns
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _add_limits(schema: dict[str, Any], settings: Settings) -> None:
    for parameter in schema["paths"]["/recommend/{user_id}"]["get"]["parameters"]:
        if parameter["name"] == "n":
            parameter["schema"]["maximum"] = settings.max_n
    components = schema["components"]["schemas"]
    batch = components["RecommendBatchRequest"]["properties"]
    batch["n"]["maximum"] = settings.max_n
    batch["user_ids"]["maxItems"] = settings.max_batch_users
    components["PredictRequest"]["properties"]["instances"]["maxItems"] = (
        settings.max_predict_instances
    )
