from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import served, service_of
from app.limits import MAX_PREDICT_INSTANCES
from app.ranking.predict import with_fold_in
from app.ranking.recommend import check_known
from app.ranking.uncertainty import NoIntervals, intervals
from app.schemas import (
    ModelRef,
    PredictRequest,
    PredictResponse,
    UnknownIdsBody,
    error_responses,
)

router = APIRouter(tags=["predict"])


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses={
        **error_responses(400, 413, 503),
        404: {"description": "ids the served model does not know", "model": UnknownIdsBody},
    },
)
async def predict_ratings(body: PredictRequest, request: Request) -> PredictResponse:
    """Predicted ratings for user-item pairs, in order: from the exported SavedModel, or for a
    user with ratings it never saw, from the factors folded in from them; with `interval`, the
    range each rating falls in with that probability."""
    current, settings = served(request), service_of(request).settings
    version, live = current.loaded, current.live.view
    MAX_PREDICT_INSTANCES.check(settings, ("body", "instances"), len(body.instances))
    user_ids, item_ids = [i.user_id for i in body.instances], [i.item_id for i in body.instances]
    check_known(live, user_ids, item_ids)
    batcher = current.batcher
    if batcher is not None and len(user_ids) < settings.predict_batch_below:
        ratings = await batcher.predict_async(user_ids, item_ids)
    else:
        # On the event loop, one SavedModel call. A big request is a batch already: measured with
        # 1,000 instances, the hop to the batcher's thread cost more than coalescing saved.
        ratings = version.predict_ratings(user_ids, item_ids)
    ratings, sources, pending = with_fold_in(live, user_ids, item_ids, ratings)
    ranges, unavailable = None, None
    if body.interval is not None:
        try:
            ranges = intervals(live, user_ids, item_ids, ratings, body.interval)
        except NoIntervals as err:
            unavailable = str(err)
    return PredictResponse(
        predictions=ratings.astype(float).round(6).tolist(),
        sources=sources,
        intervals=ranges,
        intervals_unavailable=unavailable,
        fold_in_pending=pending or None,
        model=ModelRef(name=version.name, version=version.version),
    )
