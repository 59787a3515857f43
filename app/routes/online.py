"""`GET /admin/online`: how answers did over a recent window, per version and variant, from
the impressions and attributions in the store; behind the admin token."""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.admin_schemas import Online
from app.deps import admin
from app.events import online
from app.experiments import report
from app.experiments.owner import RETRAIN
from app.routes.experiments import ADMIN_ERRORS
from app.settings import SECONDS

router = APIRouter(prefix="/admin/online", tags=["admin"])
WINDOW = re.compile(r"^([1-9][0-9]{0,4})([mhdw])$")


@router.get("", response_model=Online, responses=ADMIN_ERRORS)
async def online_metrics(
    request: Request,
    window: Annotated[
        str, Query(pattern=WINDOW.pattern, description="how far back: 30m, 1h, 24h, 7d, 4w")
    ] = "24h",
    buckets: Annotated[int, Query(ge=1, le=200, description="slices of the series")] = 24,
) -> dict[str, Any]:
    """Per version and variant: users, impressions, hits, hit rate (hits / impressions that
    could be hit), mean rating of hits, share of hits rated 4 or more, catalogue coverage, each
    rate with its 95% interval; and a series of the window for charts."""
    service = admin(request)
    found = WINDOW.match(window)
    assert found is not None  # the pattern let it through
    seconds = int(found.group(1)) * SECONDS[found.group(2)]
    until = time.time() + 1
    since = until - seconds
    attribution = service.settings.attribution_window
    counts, slices = await service.events.query(
        lambda conn: (
            online.groups(conn, since, until, attribution),
            online.series(conn, since, until, buckets),
        )
    )
    served = service.versions.served
    n_items = served.loaded.n_items if served else 0
    step = seconds / buckets
    rounds = await service.experiments.rows.list(RETRAIN)
    return {
        "window": {"start": since, "end": until, "seconds": seconds},
        "attribution_window": attribution,
        "groups": [report.group(key, c, n_items) for key, c in sorted(counts.items(), key=_order)],
        "series": [
            {
                "start": since + b * step,
                "version": v,
                "experiment": e,
                "variant": variant,
                "impressions": shown,
                "hit_impressions": hit,
            }  # fmt: skip
            for b, v, e, variant, shown, hit in slices
        ],
        "retrain": [r for _, (value, _) in sorted(rounds.items()) for r in json.loads(value)],
    }


def _order(item: tuple[online.Key, online.Counts]) -> tuple[int, str, str]:
    (version, experiment, variant), _ = item
    return (version, experiment or "", variant or "")
