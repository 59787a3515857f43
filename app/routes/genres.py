"""GET /genres: the genres items have (the filters' vocabulary), for pickers."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import view
from app.routes.render import json_response, model_ref
from app.schemas import Genres, error_responses

router = APIRouter(prefix="/genres", tags=["items"])


@router.get("", response_model=Genres, responses=error_responses(503))
async def list_genres(request: Request) -> Response:
    """Every genre an item of the served catalogue, or one registered since, has."""
    live = view(request)
    names = sorted(live.attributes.names.values(), key=str.casefold)
    return json_response({"genres": names, "model": model_ref(live.loaded)})
