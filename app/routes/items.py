"""PUT /items/{item_id}: register a film (or update its metadata) so it can be rated now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from app.deps import charge_write, loaded, service_of, writable
from app.event_schemas import ItemBody, ItemInfo
from app.events.changes import Item
from app.schemas import MAX_ID_LENGTH, error_responses

router = APIRouter(prefix="/items", tags=["items"], dependencies=[Depends(writable)])


@router.put(
    "/{item_id}", response_model=ItemInfo, responses=error_responses(400, 401, 413, 429, 503)
)
async def put_item(
    item_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    body: ItemBody,
    request: Request,
) -> ItemInfo:
    """Register an item or update its title, genres and year."""
    service, version = service_of(request), loaded(request)
    charge_write(request, 1)
    await service.events.write(Item(item_id, body.title, list(body.genres), body.year))
    return ItemInfo(
        item_id=item_id,
        title=body.title,
        genres=body.genres,
        year=body.year,
        in_model=item_id in version.item_index,
    )
