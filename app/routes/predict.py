from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import active_of, settings_of
from app.errors import too_long
from app.recommender import check_known
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
    responses={
        **error_responses(400, 413, 503),
        404: {"description": "ids the served model does not know", "model": UnknownIdsBody},
    },
)
async def predict_ratings(body: PredictRequest, request: Request) -> PredictResponse:
    """Predicted ratings for user-item pairs, in order, from the exported SavedModel."""
    active, settings = active_of(request), settings_of(request)
    bundle = active.bundle
    if len(body.instances) > settings.max_predict_instances:
        raise too_long(("body", "instances"), len(body.instances), settings.max_predict_instances)
    user_ids, item_ids = [i.user_id for i in body.instances], [i.item_id for i in body.instances]
    check_known(bundle, user_ids, item_ids)
    batcher = active.batcher
    if batcher is not None and len(user_ids) < settings.predict_batch_below:
        ratings = await batcher.predict_async(user_ids, item_ids)
    else:
        # On the event loop, one SavedModel call. A big request is a batch already: measured with
        # 1,000 instances, the hop to the batcher's thread cost more than coalescing saved.
        ratings = bundle.predict_ratings(user_ids, item_ids)
    return PredictResponse(
        predictions=ratings.astype(float).round(6).tolist(),
        model=ModelRef(name=bundle.name, version=bundle.version),
    )
