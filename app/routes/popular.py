"""GET /popular: the most-rated items, overall or in a recent window, for a home page."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from app.deps import served, service_of
from app.events.view import VersionView
from app.limits import MAX_N
from app.ranking.popular import NoTimestamps, Window, popular
from app.routes.params import ForUserQuery, QueryFilter
from app.routes.present import Listed, present
from app.routes.render import item_list, json_response, model_ref
from app.schemas import PopularResponse, error_responses

router = APIRouter(prefix="/popular", tags=["recommend"])

WINDOW = re.compile(r"^([1-9][0-9]{0,4})([hdw])$")
SECONDS = {"h": 3600, "d": 86400, "w": 7 * 86400}


@router.get("", response_model=PopularResponse, responses=error_responses(503))
async def popular_items(
    request: Request,
    where: QueryFilter,
    n: Annotated[int, Query(ge=1, description="how many items (1..RECSYS_MAX_N)")] = 10,
    window: Annotated[
        str | None,
        Query(
            pattern=WINDOW.pattern,
            description="count only ratings this recent: hours, days or weeks ('30d', '12h', "
            "'4w'), up to the newest rating the service knows of",
        ),
    ] = None,
    user_id: ForUserQuery = None,
) -> Response:
    """The n items with the most raters that the filters let through."""
    service = service_of(request)
    MAX_N.check(service.settings, ("query", "n"), n)
    seconds = None
    if window is not None:
        found = WINDOW.match(window)
        assert found is not None  # the pattern above let it through
        seconds = int(found.group(1)) * SECONDS[found.group(2)]
    spans: list[Window | None] = []

    def produce(view: VersionView) -> Listed:
        try:
            ranked, span = popular(view, n, where, seconds)
        except NoTimestamps as err:
            error = {"type": "value_error", "loc": ("query", "window"), "msg": str(err)}
            raise RequestValidationError([{**error, "input": window}]) from None
        spans.append(span)
        return Listed(ranked, item_list(view, ranked), view)

    route = service.experiments.route(served(request), user_id)
    listed, fields = present(service, route, "popular", user_id, produce, n)
    span = spans[0]
    notes = where.warnings(listed.view.attributes)
    return json_response(
        {
            **fields,
            "items": listed.items,
            "window": None if span is None else {"start": span.start, "end": span.end},
            **({"warnings": notes} if notes else {}),
            "model": model_ref(listed.view.loaded),
        }
    )
