"""GET /similar/{item_id}: items like an item, for "more like this" shelves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.deps import served, service_of
from app.events.view import VersionView
from app.limits import MAX_N
from app.ranking.similar import similar
from app.routes.params import ForUserQuery, QueryFilter
from app.routes.present import Listed, present
from app.routes.render import item_list, json_response, model_ref
from app.schemas import MAX_ID_LENGTH, SimilarResponse, UnknownIdsBody, error_responses

router = APIRouter(prefix="/similar", tags=["similar"])


@router.get(
    "/{item_id}",
    response_model=SimilarResponse,
    responses={
        **error_responses(503),
        404: {"description": "an item the served model does not know", "model": UnknownIdsBody},
    },
)
async def similaritem_list(
    item_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    request: Request,
    where: QueryFilter,
    n: Annotated[int, Query(ge=1, description="how many items (1..RECSYS_MAX_N)")] = 10,
    user_id: ForUserQuery = None,
) -> Response:
    """The n items nearest to `item_id` (cosine between the version's item vectors), best
    first, never the item itself, only items the filters let through."""
    service = service_of(request)
    MAX_N.check(service.settings, ("query", "n"), n)

    def produce(view: VersionView) -> Listed:
        ranked = similar(view, item_id, n, where)
        return Listed(ranked, item_list(view, ranked), view)

    route = service.experiments.route(served(request), user_id)
    listed, fields = present(service, route, "similar", user_id, produce, n)
    notes = where.warnings(listed.view.attributes)
    return json_response(
        {
            "item_id": item_id,
            **fields,
            "items": listed.items,
            **({"warnings": notes} if notes else {}),
            "model": model_ref(listed.view.loaded),
        }
    )
