"""The event log's records as the service handles them: what a caller sends (`Rating`, `Item`,
a user id to forget), what the store keeps (`Change`, one row of the log with its id), and what
one write stored (`Written`); and what every answer showed (`Impression`, written in batches as
`Shown`). The store writes and reads them; the live state applies the changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


# Rating, Change (and `app.events.applied.Rerated`) are made once per event on the write path,
# so they are plain slotted classes: a frozen dataclass's __init__ sets every field through
# object.__setattr__, 2.4-3.5 us an object against 0.75 (a third of a 1,000-event request's time
# in the service went to such constructors; bench/README.md, "Ingestion"). Nothing changes them.
@dataclass(slots=True)
class Rating:
    """One rating as a caller sent it (checked), before the store gives it an id."""

    user_id: str
    item_id: str
    rating: float
    ts: int
    event_id: str | None = None
    recommendation_id: str | None = None  # the impression the caller says this answers


@dataclass(frozen=True)
class Item:
    item_id: str
    title: str | None = None
    genres: list[str] = field(default_factory=list)
    year: int | None = None


@dataclass(slots=True)
class Change:
    """One row of the log as it was stored."""

    id: int
    kind: Literal["rating", "item", "forget"]
    user_id: str | None = None
    item_id: str | None = None
    rating: float | None = None
    ts: int = 0
    title: str | None = None
    genres: list[str] = field(default_factory=list)
    year: int | None = None


@dataclass(frozen=True)
class Impression:
    """One answer: who was shown which items (best first), by which version; in an experiment,
    the user's variant, or (interleaved) the variant that placed each item."""

    recommendation_id: str
    user_id: str | None
    route: str  # "recommend", "rank", "similar", "popular"
    version: int
    items: tuple[str, ...]
    ts: float
    experiment: str | None = None
    variant: str | None = None
    credits: tuple[tuple[str, int], ...] | None = None  # (variant, version) per position


@dataclass(frozen=True)
class Shown:
    """Impressions to store together (they are batched off the request path)."""

    impressions: list[Impression]


# What the writer thread takes: ratings of one request, an item to register, a user to forget,
# impressions.
Write = list[Rating] | Item | str | Shown


@dataclass(frozen=True)
class Written:
    """What one write stored: the new rows (in log order) and, for ratings, how many were
    duplicates of an event id already stored (or repeated in the same batch)."""

    changes: list[Change]
    duplicates: int = 0
    deleted: int = 0  # a forget: the user's rating rows deleted
    hits: list[Any] = field(default_factory=list)  # ratings attributed to impressions
