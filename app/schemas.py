"""Request and response bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from app.ranking.filters import ItemFilter

MAX_ID_LENGTH = 128


# Integers JSON carries exactly everywhere (JavaScript's safe range); beyond it a browser client
# would already have rounded the id to another one.
MAX_SAFE_INTEGER = 2**53 - 1
IdString = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_ID_LENGTH)]
IdInteger = Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]


# Ids may arrive as JSON integers or strings; 196, 196.0 and "196" are the same id. Booleans and
# fractions are refused, so `true` or `196.5` never silently becomes an id; nor does an integer
# beyond +-(2**53 - 1), which is refused rather than turned into a long string.
def _id_as_string(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 196.0 is the JSON integer 196 (JSON Schema says so); 196.5 is no id
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(
                "integer ids must be within +-(2**53 - 1); send larger ones as strings"
            )
        return str(value)
    return value


ExternalId = Annotated[
    IdString,
    BeforeValidator(_id_as_string, json_schema_input_type=IdInteger | IdString),
]


class ModelRef(BaseModel):
    name: str
    version: int


class Instance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: ExternalId
    item_id: ExternalId


class PredictRequest(BaseModel):
    """TensorFlow Serving's row format: {"instances": [{"user_id": ..., "item_id": ...}, ...]}."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instances": [{"user_id": 196, "item_id": 242}]}]},
    )

    instances: list[Instance] = Field(min_length=1)
    interval: float | None = Field(
        None,
        ge=0.01,
        le=0.99,
        description="also return, per prediction, the [low, high] range that holds the rating "
        "with this probability (matrix-factorisation models; calibrated on validation)",
    )


Source = Literal["model", "fold_in", "popular"]
RECOMMENDATION_ID = Field(
    description="this answer's impression: send it with the ratings it leads to (POST /events) "
    "and they count for the version (and variant) that made it"
)
VERSION = Field(description="the version that made the answer")
EXPERIMENT = Field(None, description="the running experiment that answered (absent without one)")
VARIANT = Field(
    None, description="the user's variant in that experiment (null when interleaved: both made it)"
)

FoldIn = Literal["pending"]
FOLD_IN_DESCRIPTION = (
    "present only while the user's live ratings are not yet folded in against the answering "
    "version (just after a swap): they were ranked from their trained vectors or popularity"
)
SOURCE_DESCRIPTION = (
    "what ranked the items: 'model' (the user's trained vectors), 'fold_in' (vectors solved from "
    "ratings the version never saw) or 'popular' (the most-rated items, for a user without "
    "history)"
)


class PredictResponse(BaseModel):
    predictions: list[float] = Field(description="predicted ratings, in request order")
    sources: list[Source] = Field(
        description="where each prediction came from: 'model' (the trained user), 'fold_in' "
        "(factors solved from ratings the version never saw) or 'popular' (a user the model "
        "cannot personalise for: its answer for an unknown user)"
    )
    intervals: list[tuple[float, float]] | None = Field(
        None, description="[low, high] per prediction, when an interval was asked for"
    )
    intervals_unavailable: str | None = Field(
        None, description="why no intervals came back although asked for (e.g. an MLP model)"
    )
    fold_in_pending: list[str] | None = Field(
        None,
        description="users whose live ratings are not yet folded in against this version (just "
        "after a swap): their pairs were predicted as if it had none of them",
    )
    model: ModelRef


class Because(BaseModel):
    item_id: str = Field(description="an item the user rated")
    title: str | None = None
    rating: float | None = Field(description="the user's rating of it")
    contribution: float = Field(description="its part of the score")
    share: float = Field(description="contribution / score")


class ScoreParts(BaseModel):
    """The score, split: these four add up to it (to first_stage_score where a ranker ordered
    the items)."""

    rated_items: float = Field(description="every rated item's part, summed")
    unattributed: float = Field(description="what the split over rated items misses")
    item: float = Field(description="the item's own term (its bias, a popularity blend)")
    user: float = Field(description="a rating model's global mean + user bias")


class Explanation(BaseModel):
    exact: bool = Field(description="false: the split is an approximation of the model's own")
    method: str


class RecommendedItem(BaseModel):
    item_id: str
    score: float = Field(description="ranking score; for rating models the unclipped rating")
    title: str | None = None
    genres: list[str] = Field(default_factory=list)
    because: list[Because] | None = Field(
        None, description="with explain: up to 3 rated items that add most to the score"
    )
    parts: ScoreParts | None = Field(None, description="with explain: the score's parts")
    first_stage_score: float | None = Field(
        None,
        description="with explain, where the version's learned ranker ordered the items: the "
        "blend's score that made the item a candidate, which `parts` add up to",
    )


class RecommendResponse(BaseModel):
    user_id: str
    recommendation_id: str = RECOMMENDATION_ID
    version: int = VERSION
    experiment: str | None = EXPERIMENT
    variant: str | None = VARIANT
    items: list[RecommendedItem]
    source: Source = Field(description=SOURCE_DESCRIPTION)
    fold_in: FoldIn | None = Field(None, description=FOLD_IN_DESCRIPTION)
    explanation: Explanation | None = Field(None, description="with explain: how it was made")
    warnings: list[str] | None = Field(
        None, description="what in the filters no item can pass (a genre no item has, ...)"
    )
    model: ModelRef


class SimilarResponse(BaseModel):
    item_id: str
    recommendation_id: str = RECOMMENDATION_ID
    version: int = VERSION
    experiment: str | None = EXPERIMENT
    variant: str | None = VARIANT
    items: list[RecommendedItem] = Field(
        description="the nearest items, best first, never the item itself; score: the item's "
        "item-item weight toward each (versions with them), else the cosine between the "
        "version's item vectors"
    )
    warnings: list[str] | None = Field(
        None, description="what in the filters no item can pass (a genre no item has, ...)"
    )
    model: ModelRef


MAX_FILTER_ITEMS = 1000
Genre = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]


class Filters(BaseModel):
    """Which items may come back (every field optional; all that are given must hold)."""

    genres: list[Genre] = Field(
        default_factory=list, max_length=64, description="only items of any of these genres"
    )
    exclude_genres: list[Genre] = Field(
        default_factory=list, max_length=64, description="no item of any of these genres"
    )
    year_min: int | None = Field(None, ge=1800, le=2200, description="released in or after")
    year_max: int | None = Field(None, ge=1800, le=2200, description="released in or before")
    exclude_items: list[ExternalId] = Field(
        default_factory=list,
        max_length=MAX_FILTER_ITEMS,
        description="item ids never to return (unknown ids are ignored)",
    )

    def item_filter(self) -> ItemFilter:
        return ItemFilter.of(
            self.genres, self.exclude_genres, self.year_min, self.year_max, self.exclude_items
        )


class RankRequest(BaseModel):
    """Order the caller's own items for a user: {"user_id": 196, "item_ids": [...]}."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": 196, "item_ids": [50, 181, 1]}]},
    )

    user_id: ExternalId
    item_ids: list[ExternalId] = Field(
        min_length=1, max_length=MAX_FILTER_ITEMS, description="each once (repeats dropped)"
    )
    by: Literal["default", "rating"] = Field(
        "default", description="'rating': order by the rating model's predicted rating"
    )
    fallback: bool = Field(
        True, description="a user without history gets popularity order; false: 404"
    )
    explain: bool = Field(False, description="each item says which rated items lift it")


class RankResponse(BaseModel):
    user_id: str
    recommendation_id: str = RECOMMENDATION_ID
    version: int = VERSION
    experiment: str | None = EXPERIMENT
    variant: str | None = VARIANT
    items: list[RecommendedItem] = Field(description="the given items, best first")
    source: Source = Field(description=SOURCE_DESCRIPTION)
    fold_in: FoldIn | None = Field(None, description=FOLD_IN_DESCRIPTION)
    explanation: Explanation | None = Field(None, description="with explain: how it was made")
    model: ModelRef


class PopularWindow(BaseModel):
    start: int = Field(description="unix seconds, inclusive")
    end: int = Field(description="the newest rating the service knows of")


class PopularResponse(BaseModel):
    recommendation_id: str = RECOMMENDATION_ID
    version: int = VERSION
    experiment: str | None = EXPERIMENT
    variant: str | None = VARIANT
    items: list[RecommendedItem] = Field(description="most raters first; score: raters")
    window: PopularWindow | None = Field(None, description="the ratings counted, when windowed")
    warnings: list[str] | None = Field(
        None, description="what in the filters no item can pass (a genre no item has, ...)"
    )
    model: ModelRef


class CatalogueItem(BaseModel):
    item_id: str
    title: str | None = None
    genres: list[str] = Field(default_factory=list)
    year: int | None = None
    raters: int = Field(description="users who rated it: training's, plus live ratings")
    in_model: bool = Field(description="the served version was trained on it")


class Genres(BaseModel):
    genres: list[str] = Field(description="sorted, as first spelled")
    model: ModelRef


class ItemSearch(BaseModel):
    items: list[CatalogueItem] = Field(description="most raters first")
    model: ModelRef


class RecommendBatchRequest(Filters):
    """Top-n for many users in one call: {"user_ids": [...], "n": 10}, optionally filtered."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_ids": [196, 186], "n": 10}]},
    )

    user_ids: list[ExternalId] = Field(min_length=1)
    n: int = Field(10, ge=1, description="how many items per user (1..RECSYS_MAX_N)")
    exclude_seen: bool = True
    by: Literal["default", "rating"] = Field(
        "default", description="'rating': rank by the rating model's predicted rating"
    )
    fallback: bool = Field(
        True, description="users without history get popular items; false: 404 for them"
    )
    diversity: float = Field(
        0.0,
        ge=0,
        le=1,
        description="0..1: re-rank the best candidates by maximal marginal relevance over item "
        "vectors (0: by score alone)",
    )


class UserRecommendations(BaseModel):
    user_id: str
    recommendation_id: str = RECOMMENDATION_ID
    version: int = VERSION
    experiment: str | None = EXPERIMENT
    variant: str | None = VARIANT
    items: list[RecommendedItem]
    source: Source = Field(description=SOURCE_DESCRIPTION)
    fold_in: FoldIn | None = Field(None, description=FOLD_IN_DESCRIPTION)


class RecommendBatchResponse(BaseModel):
    results: list[UserRecommendations] = Field(description="one per user_id, in request order")
    warnings: list[str] | None = Field(
        None, description="what in the filters no item can pass (a genre no item has, ...)"
    )
    model: ModelRef


class ErrorBody(BaseModel):
    """Every 4xx/5xx the service answers itself: {"detail": "what was wrong"}."""

    detail: str


class RateLimitedBody(ErrorBody):
    retry_after: int = Field(description="seconds until the same request would pass")


class UnknownIdsBody(ErrorBody):
    unknown_user_ids: list[str] = Field(description="at most 20 of them")
    unknown_item_ids: list[str] = Field(description="at most 20 of them")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the errors a route can answer (422 FastAPI documents itself)."""
    described = {
        400: ("the body is not valid JSON or not UTF-8", ErrorBody),
        404: ("an id the served model does not know", ErrorBody),
        413: ("the body is over RECSYS_MAX_BODY_BYTES", ErrorBody),
        401: ("a write token is set and the request does not carry it", ErrorBody),
        429: (
            "over the client's write rate (RECSYS_WRITE_RATE): retry after Retry-After",
            RateLimitedBody,
        ),
        503: ("no model loaded yet, or (writes) the event store did not take it", ErrorBody),
    }
    return {s: {"description": described[s][0], "model": described[s][1]} for s in statuses}
