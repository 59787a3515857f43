"""POST /events: ratings in, stored durably, counted at once."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError

from app.deps import charge_write, service_of, view, writable
from app.errors import MAX_LISTED_IDS, UnknownIds
from app.event_schemas import EventsRequest, EventsResponse
from app.events.changes import Rating
from app.limits import MAX_EVENTS
from app.schemas import UnknownIdsBody, error_responses
from app.state import ServiceState

router = APIRouter(tags=["events"], dependencies=[Depends(writable)])


@router.post(
    "/events",
    response_model=EventsResponse,
    responses={
        **error_responses(400, 401, 413, 429, 503),
        404: {"description": "items neither in the model nor registered", "model": UnknownIdsBody},
    },
)
async def post_events(body: EventsRequest, request: Request) -> EventsResponse:
    """Store ratings, all or nothing; answered once they are durable, and from then on the
    user's rated items are never recommended back."""
    service, ratings = checked(request, body)
    return await stored(service, ratings)


def checked(request: Request, body: EventsRequest) -> tuple[ServiceState, list[Rating]]:
    """The ratings of a valid body, after every check POST /events makes before storing, the
    caller's write quota charged last (`app.fast_events` calls it too).

    Raises:
        RequestValidationError: too many events, or a rating off the served model's scale (422).
        UnknownIds: an item neither in the model nor registered (404).
        RateLimited: over the caller's write quota (429).
    """
    service, live = service_of(request), view(request)
    version = live.loaded
    MAX_EVENTS.check(service.settings, ("body", "events"), len(body.events))
    low, high = version.manifest.rating_range
    outside = [(i, e.rating) for i, e in enumerate(body.events) if not low <= e.rating <= high]
    if outside:
        raise RequestValidationError(
            [_off_scale(i, r, low, high) for i, r in outside[:MAX_LISTED_IDS]]
        )
    unknown = [e.item_id for e in body.events if not live.known_item(e.item_id)]
    if unknown:
        raise UnknownIds([], list(dict.fromkeys(unknown)))
    charge_write(request, len(body.events))
    now = int(time.time())
    return service, [
        Rating(
            e.user_id,
            e.item_id,
            e.rating,
            now if e.timestamp is None else e.timestamp,
            e.event_id,
            e.recommendation_id,
        )
        for e in body.events
    ]


async def stored(service: ServiceState, ratings: list[Rating]) -> EventsResponse:
    """Store checked ratings (`checked`) and count them.

    Raises:
        StoreUnavailable: nothing was stored (503).
    """
    written = await service.events.write(ratings)
    service.metrics.events.labels("accepted").inc(len(written.changes))
    service.metrics.events.labels("duplicate").inc(written.duplicates)
    return EventsResponse(
        accepted=len(written.changes),
        duplicates=written.duplicates,
        attributed=len(written.hits),
    )


def _off_scale(index: int, rating: float, low: float, high: float) -> dict[str, Any]:
    return {
        "type": "rating_scale",
        "loc": ("body", "events", index, "rating"),
        "msg": f"Input should be within the served model's rating scale, {low:g} to {high:g}",
        "input": rating,
        "ctx": {"ge": low, "le": high},
    }
