"""POST /rank: the caller's own items ordered for a user."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import served, service_of
from app.events.view import VersionView
from app.ranking.rank import rank
from app.routes.present import Listed
from app.routes.render import explained_list, json_bytes, user_ranking
from app.schemas import RankRequest, RankResponse, UnknownIdsBody, error_responses

router = APIRouter(prefix="/rank", tags=["recommend"])


@router.post(
    "",
    response_model=RankResponse,
    responses={
        **error_responses(400, 413, 503),
        404: {
            "description": "items the served model does not know (every one named), or with "
            "fallback off a user without history",
            "model": UnknownIdsBody,
        },
    },
)
async def rank_items(body: RankRequest, request: Request) -> Response:
    """`item_ids` ordered by the user's score, best first, each with its score."""
    service = service_of(request)

    def produce(view: VersionView) -> Listed:
        user = view.user(body.user_id)
        ranked = rank(user, body.item_ids, body.by == "rating", body.fallback)
        return explained_list(user, ranked, body.explain)

    route = service.experiments.route(served(request), body.user_id)
    n = len(body.item_ids)
    return json_bytes(user_ranking(service, route, body.user_id, produce, n, "rank"))
