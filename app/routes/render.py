"""How the ranking routes (/recommend, /rank, /similar, /popular) write their answers: plain
dicts serialised by orjson, skipping response-model validation (the response models document
the shapes). Every answer is recorded as an impression (`app.events.impressions`) and carries
its recommendation id and the version that made it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from app.events.foldin import NewItems
from app.events.user import UserView
from app.events.view import VersionView
from app.experiments.owner import Route
from app.ranking.explain import (
    BLEND_METHOD,
    METHOD,
    POPULAR_METHOD,
    RANKED_METHOD,
    Explained,
    Reason,
    explain,
)
from app.ranking.filters import ItemFilter
from app.ranking.types import Recommendation
from app.routes.present import Listed, Produce, present
from app.serving.loader import LoadedVersion
from app.state import ServiceState

# What an answer says of a user whose live ratings are not yet folded in against the version
# that answers (just after a swap): they were ranked from their trained vectors or popularity.
PENDING = {"fold_in": "pending"}


def item_list(
    view: VersionView, ranked: Recommendation, explained: list[Explained] | None = None
) -> list[dict[str, Any]]:
    """The RecommendedItem shape as plain dicts (the response models document it; building and
    validating pydantic objects per item cost more than the top-N maths itself). A folded-in
    new item shows what PUT /items registered for it; with `explained`, each item carries its
    reasons and the parts of its score."""
    version, registry = view.loaded, view.log.items
    titles, genres, n = version.titles, version.genres, version.n_items
    out = []
    for r, item, s in zip(
        ranked.rows.tolist(),
        ranked.item_ids(version),
        ranked.scores.astype(float).round(6).tolist(),
        strict=True,
    ):
        registered = registry.get(item) if registry else None
        if r < n:
            title, kinds = (titles[r] if titles else None), (genres[r] if genres else [])
            if registered is not None:  # PUT /items updated it
                title, kinds = registered.title or title, list(registered.genres) or kinds
        else:
            title = registered.title if registered else None
            kinds = list(registered.genres) if registered else []
        out.append({"item_id": item, "score": s, "title": title, "genres": kinds})
    if explained is not None:
        for shown, why in zip(out, explained, strict=True):
            total = shown["score"]
            if why.first_stage is not None:  # a ranker's order: the parts split the blend's
                total = shown["first_stage_score"] = round(why.first_stage, 6)
            shown["because"] = [_reason(view, ranked.new_items, r, total) for r in why.because]
            shown["parts"] = {
                "rated_items": round(why.rated_items, 6),
                "unattributed": round(why.unattributed, 6),
                "item": round(why.item, 6),
                "user": round(why.user, 6),
            }
    return out


def user_ranking(
    service: ServiceState,
    route: Route,
    user_id: str,
    produce: Produce,
    n: int,
    name: str = "recommend",
    where: ItemFilter | None = None,
) -> bytes:
    """The answer of /recommend/{user_id} and /rank, as JSON bytes: the user, the impression,
    their items (explained when asked), where the ranking came from, what in the filters nothing
    passes, and the model."""
    listed, fields = present(service, route, name, user_id, produce, n)
    answer: dict[str, Any] = {
        "user_id": user_id,
        **fields,
        "items": listed.items,
        "source": listed.ranked.source,
    }
    if listed.ranked.pending:
        answer.update(PENDING)
    if listed.note is not None:
        answer["explanation"] = listed.note
    warnings = where.warnings(listed.view.attributes) if where else None
    if warnings:
        answer["warnings"] = warnings
    return orjson.dumps({**answer, "model": model_ref(listed.view.loaded)})


def explained_list(user: UserView, ranked: Recommendation, explain: bool) -> Listed:
    """A user's ranking as an arm lists it: its items, with their reasons when asked."""
    why = explanation(user, ranked) if explain else None
    items = item_list(user.view, ranked, why[0] if why else None)
    return Listed(ranked, items, user.view, why[1] if why else None)


def explanation(
    user: UserView, ranked: Recommendation
) -> tuple[list[Explained], dict[str, Any]] | None:
    """The explanations of a ranking's items and the response's note on how they were made."""
    if ranked.scored is None:
        return None
    explained = explain(user, ranked.scored, ranked.rows, ranked.scores)
    scored = ranked.scored
    method = POPULAR_METHOD if scored.query is None else BLEND_METHOD if scored.blend else METHOD
    if scored.blend is not None and scored.blend.first is not None:
        method += RANKED_METHOD
    return explained, {"exact": ranked.scored.query is None, "method": method}


def _reason(
    view: VersionView, new: NewItems | None, reason: Reason, score: float
) -> dict[str, Any]:
    version = view.loaded
    n, title = version.n_items, None
    if reason.row < n:
        item = version.item_ids[reason.row]
        title = version.titles[reason.row] if version.titles else None
    else:
        assert new is not None  # rows past the catalogue are the ranking's new items
        item = new.ids[reason.row - n]
    registered = view.log.items.get(item)
    if registered is not None and registered.title:
        title = registered.title
    return {
        "item_id": item,
        "title": title,
        "rating": reason.rating,
        "contribution": round(reason.contribution, 6),
        "share": round(reason.contribution / score, 4) if score else 0.0,
    }


def model_ref(version: LoadedVersion) -> dict[str, Any]:
    return {"name": version.name, "version": version.version}


def json_bytes(body: bytes) -> Response:
    """Already-serialised JSON as a Response (FastAPI skips response-model validation)."""
    return Response(body, media_type="application/json")


def json_response(content: dict[str, Any]) -> Response:
    """Serialised by orjson straight to bytes; FastAPI skips response-model validation for a
    Response, which is the point: the content is built above from the served arrays."""
    return json_bytes(orjson.dumps(content))
