"""GET /items?q=... and GET /items/{item_id}: the catalogue, read (search by title, one film's
metadata); no token needed. Writes (PUT /items) live in app/routes/items.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.deps import service_of, view
from app.errors import UnknownIds
from app.limits import MAX_N
from app.ranking.catalogue import describe, search
from app.routes.render import json_response, model_ref
from app.schemas import MAX_ID_LENGTH, CatalogueItem, ItemSearch, UnknownIdsBody, error_responses

router = APIRouter(prefix="/items", tags=["items"])


@router.get("", response_model=ItemSearch, responses=error_responses(503))
async def search_items(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=200, description="part of a title")],
    n: Annotated[int, Query(ge=1, description="how many items (1..RECSYS_MAX_N)")] = 10,
) -> Response:
    """Films whose title contains `q` (case-insensitive), most raters first."""
    live = view(request)
    MAX_N.check(service_of(request).settings, ("query", "n"), n)
    found = search(live, q, n)
    return json_response({"items": found, "model": model_ref(live.loaded)})


@router.get(
    "/{item_id}",
    response_model=CatalogueItem,
    responses={
        **error_responses(503),
        404: {"description": "an item the service does not know", "model": UnknownIdsBody},
    },
)
async def get_item(
    item_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)], request: Request
) -> Response:
    """One film: title, genres, year, raters, and whether the served version was trained on
    it."""
    found = describe(view(request), item_id)
    if found is None:
        raise UnknownIds([], [item_id])
    return json_response(found)
