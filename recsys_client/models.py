"""The bodies the service takes and answers with: the service's own pydantic models (its
contract modules, `app.schemas` and beside it), so the client and the server cannot drift;
`tests/client` compares them with the served OpenAPI description."""

from __future__ import annotations

from app.admin_schemas import ExperimentList, ExperimentReport, Online
from app.event_schemas import (
    Event,
    EventsRequest,
    EventsResponse,
    Forgotten,
    ItemBody,
    ItemInfo,
    UserRatings,
)
from app.experiments.spec import ExperimentBody
from app.schemas import (
    CatalogueItem,
    Genres,
    Instance,
    ItemSearch,
    PopularResponse,
    PredictRequest,
    PredictResponse,
    RankRequest,
    RankResponse,
    RecommendBatchRequest,
    RecommendBatchResponse,
    RecommendResponse,
    SimilarResponse,
)
from app.status_schemas import Health, ModelInfo, Readiness

__all__ = [
    "CatalogueItem",
    "Event",
    "EventsRequest",
    "EventsResponse",
    "ExperimentBody",
    "ExperimentList",
    "ExperimentReport",
    "Forgotten",
    "Genres",
    "Health",
    "Instance",
    "ItemBody",
    "ItemInfo",
    "ItemSearch",
    "ModelInfo",
    "Online",
    "PopularResponse",
    "PredictRequest",
    "PredictResponse",
    "RankRequest",
    "RankResponse",
    "Readiness",
    "RecommendBatchRequest",
    "RecommendBatchResponse",
    "RecommendResponse",
    "SimilarResponse",
    "UserRatings",
]
