from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from app.deps import served, service_of
from app.errors import UnknownIds
from app.events.live import LiveVersion
from app.events.view import VersionView
from app.limits import MAX_BATCH_USERS, MAX_N
from app.ranking.filters import ItemFilter
from app.ranking.recommend import recommend, recommend_many
from app.ranking.types import Recommendation
from app.routes.params import QueryFilter
from app.routes.present import Listed, present
from app.routes.render import (
    PENDING,
    explained_list,
    item_list,
    json_bytes,
    json_response,
    model_ref,
    user_ranking,
)
from app.schemas import (
    MAX_ID_LENGTH,
    RecommendBatchRequest,
    RecommendBatchResponse,
    RecommendResponse,
    error_responses,
)
from app.serving.versions import ServedVersion
from app.state import ServiceState

router = APIRouter(prefix="/recommend", tags=["recommend"])


@router.get("/{user_id}", response_model=RecommendResponse, responses=error_responses(404, 503))
async def recommend_for_user(
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    request: Request,
    where: QueryFilter,
    n: Annotated[int, Query(ge=1, description="how many items (1..RECSYS_MAX_N)")] = 10,
    exclude_seen: bool = True,
    by: Annotated[
        Literal["default", "rating"],
        Query(description="'rating': rank by the rating model's predicted rating"),
    ] = "default",
    fallback: Annotated[
        bool, Query(description="a user without history gets popular items; false: 404")
    ] = True,
    diversity: Annotated[
        float,
        Query(
            ge=0,
            le=1,
            description="0..1: re-rank the best candidates by maximal marginal relevance over "
            "item vectors (0: by score alone)",
        ),
    ] = 0.0,
    explain: Annotated[
        bool, Query(description="each item says which of the user's rated items lift it")
    ] = False,
) -> Response:
    """The user's top-n items, best first, never one they already rated (unless asked), only
    items the filters let through."""
    service = service_of(request)
    MAX_N.check(service.settings, ("query", "n"), n)
    answer = ranking(
        service, served(request), user_id, where, n, exclude_seen, by, fallback, diversity, explain
    )
    return json_bytes(answer)


def ranking(
    service: ServiceState,
    default: ServedVersion[LiveVersion],
    user_id: str,
    where: ItemFilter,
    n: int,
    exclude_seen: bool,
    by: str,
    fallback: bool,
    diversity: float,
    explain: bool,
) -> bytes:
    """GET /recommend/{user_id}'s answer for validated parameters (the declared route's, and
    the raw path's in `app.fast_recommend`, which calls it with the same names), through the
    user's arm of the running experiment, if any."""

    def produce(view: VersionView) -> Listed:
        user = view.user(user_id)
        ranked = recommend(user, n, exclude_seen, by == "rating", fallback, where, diversity)
        return explained_list(user, ranked, explain)

    route = service.experiments.route(default, user_id)
    return user_ranking(service, route, user_id, produce, n, "recommend", where)


@router.post(
    "",
    response_model=RecommendBatchResponse,
    responses=error_responses(400, 404, 413, 503),
)
async def recommend_for_users(body: RecommendBatchRequest, request: Request) -> Response:
    """Top-n for each of `user_ids`, in order, computed together (one matrix-matrix product per
    block of users and version answering them). Users without history get popular items; with
    `fallback` off, all or nothing: an unknown user answers 404 naming every unknown one."""
    service, default = service_of(request), served(request)
    settings = service.settings
    MAX_BATCH_USERS.check(settings, ("body", "user_ids"), len(body.user_ids))
    MAX_N.check(settings, ("body", "n"), body.n)
    where = body.item_filter()
    routes = [service.experiments.route(default, user) for user in body.user_ids]
    if not body.fallback:
        unknown = [
            user
            for user, route in zip(body.user_ids, routes, strict=True)
            if not route.arms[0].served.live.view.user(user).known
        ]
        if unknown:
            raise UnknownIds(list(dict.fromkeys(unknown)), [])
    by_version: dict[int, tuple[VersionView, list[int]]] = {}
    for k, route in enumerate(routes):
        for arm in route.arms:
            view = arm.served.live.view
            by_version.setdefault(view.version, (view, []))[1].append(k)
    ranked: dict[tuple[int, int], Recommendation] = {}
    for version, (view, who) in by_version.items():
        found = recommend_many(
            view,
            [body.user_ids[k] for k in who],
            body.n,
            body.exclude_seen,
            body.by == "rating",
            body.fallback,
            where,
            body.diversity,
        )
        ranked |= {(version, k): r for k, r in zip(who, found, strict=True)}
    results = []
    for k, (user, route) in enumerate(zip(body.user_ids, routes, strict=True)):

        def produce(view: VersionView, k: int = k) -> Listed:
            mine = ranked[(view.version, k)]
            return Listed(mine, item_list(view, mine), view)

        listed, fields = present(service, route, "recommend", user, produce, body.n)
        results.append(
            {
                "user_id": user,
                **fields,
                "items": listed.items,
                "source": listed.ranked.source,
                **(PENDING if listed.ranked.pending else {}),
            }
        )
    attributes = default.live.view.attributes
    return json_response(
        {
            "results": results,
            **({"warnings": notes} if (notes := where.warnings(attributes)) else {}),
            "model": model_ref(default.loaded),
        }
    )
