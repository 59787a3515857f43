"""The bodies of the routes that say how the service is: /models, /health, /ready."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import ModelRef


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: int
    kind: str
    factors: int
    created: str
    users: int
    items: int
    rating_range: list[float] = Field(min_length=2, max_length=2, description="[low, high]")
    recommend: str = Field(description="which vectors /recommend ranks with by default")
    metrics: dict[str, dict[str, float | int | None]]
    curves: dict[str, dict[str, list[float]]] = Field(
        default_factory=dict,
        description="per model ('rating', 'retrieval'), the first fit's per-epoch losses and "
        "validation metrics, as training recorded them (empty for older versions)",
    )
    versions_on_disk: list[int] = Field(
        default_factory=list, description="every version directory of this model, newest first"
    )


class Health(BaseModel):
    status: str


class StoreStatus(BaseModel):
    status: Literal["ok", "unavailable"]
    url: str = Field(description="the store, without password (SQLite: the file's name)")
    id: str | None = Field(None, description="the store's identity (a UUID kept for its life)")
    applied_through: int = Field(description="the newest event-log id this worker has applied")
    error: str | None = Field(None, description="why it is unavailable")


class FoldInProgress(BaseModel):
    version: int
    pending: int = Field(description="users with live ratings not yet folded in")
    folded: int = Field(description="users folded in against this version")


class Readiness(BaseModel):
    status: str
    model: ModelRef | None = None
    store: StoreStatus | None = Field(
        None, description="the event store: reads keep serving while it is unavailable"
    )
    refused: dict[str, str] = Field(
        default_factory=dict,
        description="version -> why it was refused (the file, relative to RECSYS_MODELS_DIR)",
    )
    fold_in: list[FoldInProgress] = Field(
        default_factory=list,
        description="per served version, how far folding its users' live ratings in got (after "
        "a start or a swap, users still pending are answered from trained vectors or popularity)",
    )
    problems: list[str] = Field(
        default_factory=list,
        description="what on disk is wrong while the service keeps serving (the served "
        "version's directory deleted, the models directory unreadable)",
    )
