"""A user's ratings (training data and live events) and forgetting a user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from app.deps import charge_write, history_readable, service_of, view, writable
from app.errors import UnknownUser
from app.event_schemas import Forgotten, UserRating, UserRatings
from app.schemas import MAX_ID_LENGTH, error_responses

router = APIRouter(prefix="/users", tags=["users"])
UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]


@router.get(
    "/{user_id}/ratings",
    response_model=UserRatings,
    responses=error_responses(401, 404, 503),
    dependencies=[Depends(history_readable)],
)
async def user_ratings(
    user_id: UserId,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> UserRatings:
    """The ratings the service knows for a user, newest first: those the served version was
    trained on and those posted since (a later one replaces an earlier one of the same item)."""
    live = view(request)
    version, user = live.loaded, live.user(user_id)
    by_item: dict[str, UserRating] = {}
    order: dict[str, int] = {}  # log id of each event: among equal times, the later posted first
    row = user.row
    if row is not None:
        lo, hi = int(version.seen.indptr[row]), int(version.seen.indptr[row + 1])
        ratings, stamps = version.seen.ratings, version.seen.timestamps
        for k, col in enumerate(version.seen.indices[lo:hi].tolist()):
            item = version.item_ids[col]
            by_item[item] = UserRating(
                item_id=item,
                rating=float(ratings[lo + k]) if ratings is not None else None,
                timestamp=int(stamps[lo + k]) if stamps is not None else 0,
                source="training",
                title=version.titles[col] if version.titles else None,
            )
    for item, rated in user.live.items():
        col = version.item_index.get(item)
        registered = live.log.items.get(item)
        title = version.titles[col] if version.titles and col is not None else None
        rating, ts, log_id = rated
        by_item[item] = UserRating(
            item_id=item,
            rating=rating,
            timestamp=ts,
            source="event",
            title=title or (registered.title if registered else None),
        )
        order[item] = log_id
    if not by_item:
        raise UnknownUser(user_id)
    newest = sorted(
        by_item.values(), key=lambda r: (-r.timestamp, -order.get(r.item_id, 0), r.item_id)
    )
    return UserRatings(
        user_id=user_id,
        ratings=newest[offset : offset + limit],
        total=len(newest),
        limit=limit,
        offset=offset,
    )


@router.delete(
    "/{user_id}",
    response_model=Forgotten,
    responses=error_responses(401, 404, 429, 503),
    dependencies=[Depends(writable)],
)
async def forget_user(user_id: UserId, request: Request) -> Forgotten:
    """Forget a user: their events leave the store, their live state goes at once (they are
    then answered like an unknown user), and the next training leaves them out."""
    service = service_of(request)
    live = view(request)  # 503 while no version serves, as every route that needs one
    if live.base_row(user_id) is None and user_id not in live.log.ratings:
        raise UnknownUser(user_id)
    charge_write(request, 1)
    written = await service.events.write(user_id)
    return Forgotten(user_id=user_id, events_deleted=written.deleted)
