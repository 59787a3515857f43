from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import loaded
from app.schemas import ModelInfo, error_responses

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelInfo, responses=error_responses(503))
async def served_model(request: Request) -> ModelInfo:
    """The version being served: name, version, kind and its validation/test metrics."""
    version = loaded(request)
    m = version.manifest
    return ModelInfo(
        name=m.name,
        version=m.version,
        kind=m.model.kind,
        factors=m.model.factors,
        created=m.created,
        users=len(version.user_index),
        items=version.n_items,
        rating_range=m.rating_range,
        recommend=version.vectors.source,
        metrics=m.metrics,
    )
