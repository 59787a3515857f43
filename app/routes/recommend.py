from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request, Response

from app.deps import loaded, service_of
from app.events.live import LiveState
from app.limits import MAX_BATCH_USERS, MAX_N
from app.ranking.recommend import Recommendation, recommend, recommend_many
from app.schemas import (
    MAX_ID_LENGTH,
    RecommendBatchRequest,
    RecommendBatchResponse,
    RecommendResponse,
    error_responses,
)
from app.serving.loader import LoadedVersion

router = APIRouter(prefix="/recommend", tags=["recommend"])


@router.get("/{user_id}", response_model=RecommendResponse, responses=error_responses(404, 503))
async def recommend_for_user(
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    request: Request,
    n: Annotated[int, Query(ge=1, description="how many items (1..RECSYS_MAX_N)")] = 10,
    exclude_seen: bool = True,
    by: Annotated[
        Literal["default", "rating"],
        Query(description="'rating': rank by the rating model's predicted rating"),
    ] = "default",
    fallback: Annotated[
        bool, Query(description="a user without history gets popular items; false: 404")
    ] = True,
) -> Response:
    """The user's top-n items, best first, never one they already rated (unless asked)."""
    version, service = loaded(request), service_of(request)
    MAX_N.check(service.settings, ("query", "n"), n)
    ranked = recommend(
        version, service.events.live, user_id, n, exclude_seen, by == "rating", fallback
    )
    return _json(
        {
            "user_id": user_id,
            "items": _items(version, service.events.live, ranked),
            "source": ranked.source,
            "model": _model(version),
        }
    )


@router.post(
    "",
    response_model=RecommendBatchResponse,
    responses=error_responses(400, 404, 413, 503),
)
async def recommend_for_users(body: RecommendBatchRequest, request: Request) -> Response:
    """Top-n for each of `user_ids`, in order, computed together (one matrix-matrix product per
    block of users). Users without history get popular items; with `fallback` off, all or
    nothing: an unknown user answers 404 naming every unknown one."""
    version, service = loaded(request), service_of(request)
    MAX_BATCH_USERS.check(service.settings, ("body", "user_ids"), len(body.user_ids))
    MAX_N.check(service.settings, ("body", "n"), body.n)
    live = service.events.live
    ranked = recommend_many(
        version,
        live,
        body.user_ids,
        body.n,
        body.exclude_seen,
        body.by == "rating",
        body.fallback,
    )
    return _json(
        {
            "results": [
                {"user_id": user, "items": _items(version, live, r), "source": r.source}
                for user, r in zip(body.user_ids, ranked, strict=True)
            ],
            "model": _model(version),
        }
    )


def _items(version: LoadedVersion, live: LiveState, ranked: Recommendation) -> list[dict[str, Any]]:
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
        if r < n:
            title, kinds = (titles[r] if titles else None), (genres[r] if genres else [])
        else:
            registered = live.items.get(item)
            title = registered.title if registered else None
            kinds = list(registered.genres) if registered else []
        out.append({"item_id": item, "score": round(s, 6), "title": title, "genres": kinds})
    return out


def _model(version: LoadedVersion) -> dict[str, Any]:
    return {"name": version.name, "version": version.version}


def _json(content: dict[str, Any]) -> Response:
    """Serialised by orjson straight to bytes; FastAPI skips response-model validation for a
    Response, which is the point: the content is built above from the served arrays."""
    return Response(orjson.dumps(content), media_type="application/json")
