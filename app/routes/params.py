"""The query parameters several ranking routes share (filters), declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from app.ranking.filters import ItemFilter

MAX_LIST_CHARS = 8192  # a comma-separated query list; bodies bound their lists by count
YEARS = {"ge": 1800, "le": 2200}

GenresQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_LIST_CHARS,
        description="only items of any of these genres, comma-separated (case-insensitive)",
    ),
]
ExcludeGenresQuery = Annotated[
    str | None,
    Query(max_length=MAX_LIST_CHARS, description="no item of any of these genres"),
]
YearMinQuery = Annotated[
    int | None, Query(**YEARS, description="only items released in or after this year")
]
YearMaxQuery = Annotated[
    int | None, Query(**YEARS, description="only items released in or before this year")
]
ExcludeItemsQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_LIST_CHARS,
        description="item ids never to return, comma-separated (unknown ids are ignored)",
    ),
]


ForUserQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        description="who the list is shown to: its impression is then attributed to their "
        "later ratings (without: only to ratings that name its recommendation_id)",
    ),
]


async def query_filter(
    genres: GenresQuery = None,
    exclude_genres: ExcludeGenresQuery = None,
    year_min: YearMinQuery = None,
    year_max: YearMaxQuery = None,
    exclude_items: ExcludeItemsQuery = None,
) -> ItemFilter:
    """The filter a query string asks for (a dependency: async, so FastAPI calls it on the
    event loop, not in its thread pool)."""
    return filter_of(genres, exclude_genres, year_min, year_max, exclude_items)


def filter_of(
    genres: str | None = None,
    exclude_genres: str | None = None,
    year_min: int | None = None,
    year_max: int | None = None,
    exclude_items: str | None = None,
) -> ItemFilter:
    """The filter of the query parameters above, as validated (lists comma-separated)."""
    return ItemFilter.of(
        _split(genres), _split(exclude_genres), year_min, year_max, _split(exclude_items)
    )


QueryFilter = Annotated[ItemFilter, Depends(query_filter)]


def _split(value: str | None) -> list[str]:
    return value.split(",") if value else []
