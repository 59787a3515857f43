"""POST /rank: the caller's own items ordered for a user."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import service_of, view
from app.ranking.rank import rank
from app.routes.render import json_bytes, user_ranking
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
    user = view(request).user(body.user_id)
    ranked = rank(user, body.item_ids, body.by == "rating", body.fallback)
    return json_bytes(user_ranking(service_of(request), user, ranked, body.explain, route="rank"))
