from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import loaded
from app.schemas import error_responses
from app.status_schemas import ModelInfo
from artifact.layout import list_versions

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelInfo, responses=error_responses(503))
async def served_model(request: Request) -> ModelInfo:
    """The version being served: name, version, kind, its validation/test metrics and training
    curves, and the versions on disk beside it."""
    version = loaded(request)
    m = version.manifest
    curves = {
        name: part["history"]
        for name, part in (("rating", m.training), ("retrieval", m.retrieval or {}))
        if isinstance(part.get("history"), dict)
    }
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
        curves=curves,
        versions_on_disk=list_versions(version.path.parent),
    )
