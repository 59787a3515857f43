"""Request and response bodies of the live routes: events, items, users."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas import MAX_SAFE_INTEGER, ExternalId, IdString

Genre = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: ExternalId
    item_id: ExternalId
    rating: float = Field(allow_inf_nan=False, description="within the served model's scale")
    timestamp: int | None = Field(
        None, ge=0, le=MAX_SAFE_INTEGER, description="seconds since 1970; default: now"
    )
    event_id: IdString | None = Field(
        None, description="idempotency key: an event id already stored is not stored again"
    )
    recommendation_id: (
        Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)] | None
    ) = Field(
        None,
        description="the answer this rating follows (its recommendation_id): a hit for the "
        "version that made it when it showed the item; without, the user's most recent answer "
        "that showed the item within RECSYS_ATTRIBUTION_WINDOW",
    )


class EventsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"events": [{"user_id": "u1", "item_id": "242", "rating": 4.5}]}]
        },
    )

    events: list[Event] = Field(min_length=1, description="stored all or nothing")


class EventsResponse(BaseModel):
    accepted: int = Field(description="events stored by this request")
    duplicates: int = Field(description="events whose event_id was already stored")
    attributed: int = Field(
        description="stored ratings that answered an impression (a hit for its version)"
    )


class ItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(max_length=512)] | None = None
    genres: list[Genre] = Field(default_factory=list, max_length=32)
    year: int | None = Field(None, ge=1800, le=2200)


class ItemInfo(ItemBody):
    item_id: str
    in_model: bool = Field(description="the served version was trained on it")


class UserRating(BaseModel):
    item_id: str
    rating: float | None = Field(description="null: a version exported without its ratings")
    timestamp: int = Field(description="seconds since 1970 (0: the training data had none)")
    source: Literal["training", "event"] = Field(
        description="'training': in the data the served version learned from; 'event': posted"
    )
    title: str | None = None


class UserRatings(BaseModel):
    user_id: str
    ratings: list[UserRating] = Field(description="newest first")
    total: int
    limit: int
    offset: int


class Forgotten(BaseModel):
    user_id: str
    events_deleted: int = Field(description="their ratings removed from the event store")
