from __future__ import annotations

from fastapi import APIRouter

from app.deps import BundleDep, SettingsDep
from app.errors import TooManyInstances
from app.recommender import predict
from app.schemas import ModelRef, PredictRequest, PredictResponse

router = APIRouter(tags=["predict"])


@router.post("/predict", response_model=PredictResponse)
async def predict_ratings(
    body: PredictRequest, bundle: BundleDep, settings: SettingsDep
) -> PredictResponse:
    """Predicted ratings for user-item pairs, in order, from the exported SavedModel."""
    if len(body.instances) > settings.max_predict_instances:
        raise TooManyInstances(
            f"{len(body.instances)} instances; at most {settings.max_predict_instances} per call"
        )
    ratings = predict(
        bundle, [i.user_id for i in body.instances], [i.item_id for i in body.instances]
    )
    return PredictResponse(
        predictions=ratings.astype(float).round(6).tolist(),
        model=ModelRef(name=bundle.name, version=bundle.version),
    )
