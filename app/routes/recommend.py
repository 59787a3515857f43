from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError

from app.deps import BundleDep, SettingsDep
from app.recommender import recommend
from app.schemas import MAX_ID_LENGTH, ModelRef, RecommendedItem, RecommendResponse

router = APIRouter(prefix="/recommend", tags=["recommend"])


@router.get("/{user_id}", response_model=RecommendResponse)
async def recommend_for_user(
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    bundle: BundleDep,
    settings: SettingsDep,
    n: Annotated[int, Query(ge=1, description="how many items (1..RECSYS_MAX_N)")] = 10,
    exclude_seen: bool = True,
    by: Annotated[
        Literal["default", "rating"],
        Query(description="'rating': rank by the rating model's predicted rating"),
    ] = "default",
) -> RecommendResponse:
    """The user's top-n items, best first, never one they already rated (unless asked)."""
    if n > settings.max_n:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("query", "n"),
                    "msg": f"Input should be less than or equal to {settings.max_n}",
                    "input": str(n),
                    "ctx": {"le": settings.max_n},
                }
            ]
        )
    rows, scores = recommend(bundle, user_id, n, exclude_seen, by_rating=by == "rating")
    titles, genres = bundle.titles, bundle.genres
    items = [
        RecommendedItem(
            item_id=bundle.item_ids[r],
            score=round(float(s), 6),
            title=titles[r] if titles else None,
            genres=genres[r] if genres else [],
        )
        for r, s in zip(rows.tolist(), scores.tolist(), strict=True)
    ]
    return RecommendResponse(
        user_id=user_id, items=items, model=ModelRef(name=bundle.name, version=bundle.version)
    )
