"""How the ranking routes (/recommend, /similar) write their answers: plain dicts serialised by
orjson, skipping response-model validation (the response models document the shapes)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from app.events.live import LiveState
from app.ranking.recommend import Recommendation
from app.serving.loader import LoadedVersion


def item_list(
    version: LoadedVersion, live: LiveState, ranked: Recommendation
) -> list[dict[str, Any]]:
    """The RecommendedItem shape as plain dicts (the response models document it; building and
    validating pydantic objects per item cost more than the top-N maths itself). A folded-in
    new item shows what PUT /items registered for it."""
    titles, genres, n = version.titles, version.genres, version.n_items
    out = []
    for r, item, s in zip(
        ranked.rows.tolist(),
        ranked.item_ids(version),
        ranked.scores.astype(float).tolist(),
        strict=True,
    ):
        registered = live.items.get(item) if live.items else None
        if r < n:
            title, kinds = (titles[r] if titles else None), (genres[r] if genres else [])
            if registered is not None:  # PUT /items updated it
                title, kinds = registered.title or title, list(registered.genres) or kinds
        else:
            title = registered.title if registered else None
            kinds = list(registered.genres) if registered else []
        out.append({"item_id": item, "score": round(s, 6), "title": title, "genres": kinds})
    return out


def model_ref(version: LoadedVersion) -> dict[str, Any]:
    return {"name": version.name, "version": version.version}


def json_response(content: dict[str, Any]) -> Response:
    """Serialised by orjson straight to bytes; FastAPI skips response-model validation for a
    Response, which is the point: the content is built above from the served arrays."""
    return Response(orjson.dumps(content), media_type="application/json")
