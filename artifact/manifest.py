"""`manifest.json`: what a version is, how it scored, how /recommend ranks with it, and the
SHA-256 of every other file. Written by training and read by the service through this module
only, as one frozen model, checked both ways (BentoML's model store does the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from artifact.errors import ArtifactError
from artifact.files import read_json
from artifact.jsonsafe import write_json
from artifact.layout import MANIFEST, SIGNATURE, is_version_name

FORMAT_VERSION = 1

Metrics = dict[str, dict[str, float | int | None]]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


class ModelSpec(_Frozen):
    """The rating model behind the SavedModel's signature."""

    kind: str
    factors: int = Field(ge=1)
    parameters: int | None = None
    signature: str = SIGNATURE
    inputs: dict[str, str] = Field(
        default_factory=lambda: {"user_id": "string[None]", "item_id": "string[None]"}
    )
    outputs: dict[str, str] = Field(default_factory=lambda: {"rating": "float32[None]"})


class RecommendSpec(_Frozen):
    """Which arrays /recommend ranks with and what its score means.

    score = user_factors[u] @ item_factors.T (+ item_bias). With `score="rating"` the arrays
    reproduce the rating model exactly and global_mean + user_bias[u] is added, so the score is
    the predicted rating before clipping; "dot" marks vectors whose dot product is only a
    ranking score (the retrieval vectors, or embeddings taken from an MLP).
    """

    source: str = "rating"  # "retrieval" or the rating model's kind
    user_factors: str
    item_factors: str
    item_bias: str | None = None
    user_bias: str | None = None
    score: Literal["rating", "dot"] = "dot"
    seen: str = "every rating given to training (all splits)"


class EventsSpec(_Frozen):
    """What a version learned from the service's event store (`recsys train --store`): every
    event up to log id `through` of the store whose identity is `store_id`
    (`artifact.eventlog.StoreIdentity`). A service on that store leaves those out of its live
    state when it serves the version; later ones are folded in against its vectors. On any
    other store (or with no `store_id`) nothing is taken as learned: every event applies."""

    store: str  # as the manifest names it: no password, no host paths
    store_id: str | None = None
    through: int = Field(ge=0)
    ratings: int = Field(ge=0)
    forgotten: int = Field(ge=0)
    items: int = Field(ge=0)
    impressions: int = Field(0, ge=0)  # read as exposure, never as ratings


class GateScores(_Frozen):
    ndcg: float | None = Field(description="NDCG@10 of /recommend on the held-out ratings")
    rmse: float | None = Field(description="RMSE of /predict on the held-out ratings")


class GateSpec(_Frozen):
    """How the retrain loop let this version through (`recsys retrain`): the served version it
    was compared with on the newest ratings that version never learned, both scores, the
    tolerance, and the verdict ("passed", or "forced": published with --force whatever the
    scores)."""

    baseline_version: int = Field(ge=1)
    baseline: GateScores
    candidate: GateScores
    tolerance: float = Field(ge=0)
    verdict: Literal["passed", "forced"]
    held_out_ratings: int = Field(ge=0)
    held_out_users: int = Field(ge=0)


class UncertaintySpec(_Frozen):
    """How sure /predict's ratings are (`artifact.posterior`): the residual variance of a
    rating around the model's, and at each nominal level the calibrated half-width of the
    interval in predictive standard deviations, both measured on validation ratings by the
    model fitted without them."""

    noise: float = Field(gt=0)
    levels: list[float]
    multipliers: list[float]
    validation_ratings: int = Field(ge=1)

    @model_validator(mode="after")
    def _aligned(self) -> UncertaintySpec:
        if len(self.levels) != len(self.multipliers) or not self.levels:
            raise ValueError(f"{len(self.levels)} levels but {len(self.multipliers)} multipliers")
        if any(b <= a for a, b in zip(self.levels, self.levels[1:], strict=False)):
            raise ValueError("levels must increase")
        return self


class ItemItemSpec(_Frozen):
    """Item-item weights (EDLAE) blended with the default vectors in /recommend's score:
    blend * z(x_u B) + (1 - blend) * z(vectors' score), z standardising one user's scores over
    the catalogue; x_u is the user's row of ratings. Chosen on validation (training.itemitem)."""

    weights: str  # the (items, items) float32 file
    blend: float = Field(ge=0, le=1)
    strength: float = Field(ge=0)
    dropout: float = Field(ge=0, lt=1)


class RankerSpec(_Frozen):
    """/recommend's learned second stage (`artifact.ranker`): its files, its features' names
    and standardisation, the item table's genre columns, and how it was chosen on validation
    (training.ranker)."""

    items: str  # (items, 2 + genres) float32: log raters, year, genre indicators
    hidden: str  # (features + 1, width) float32: weights, then the bias row
    output: str  # (width + 1,) float32: weights, then the bias
    features: list[str]
    mean: list[float]
    scale: list[float]
    genres: list[str]
    per_source: int = Field(ge=1)
    width: int = Field(ge=1)
    epochs: int = Field(ge=1)

    @model_validator(mode="after")
    def _aligned(self) -> RankerSpec:
        if not len(self.features) == len(self.mean) == len(self.scale):
            raise ValueError(
                f"{len(self.features)} features but {len(self.mean)} means and "
                f"{len(self.scale)} scales"
            )
        if any(s <= 0 for s in self.scale):
            raise ValueError("every scale must be positive")
        return self


class AnnSpec(_Frozen):
    """The approximate top-N index over /recommend's default item vectors (`artifact.ann`), for
    catalogues of at least `min_items`; the service searches it with `nprobe` lists."""

    file: str
    kind: str
    lists: int = Field(ge=1)
    nprobe: int = Field(ge=1)
    recall_at_10: float = Field(ge=0, le=1)  # against exact, on `sample_queries` users
    sample_queries: int = Field(ge=1)
    build_seconds: float = Field(ge=0)
    min_items: int = Field(ge=1)


class Manifest(_Frozen):
    format_version: int
    name: str
    version: int = Field(ge=1)
    created: str
    model: ModelSpec
    global_mean: float
    rating_range: tuple[float, float]
    counts: dict[str, int]
    metrics: Metrics = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    retrieval: dict[str, Any] | None = None
    recommend: RecommendSpec
    recommend_by_rating: RecommendSpec | None = None
    item_item: ItemItemSpec | None = None
    ranker: RankerSpec | None = None  # None: /recommend ranks by the first stage alone
    ann: AnnSpec | None = None  # None: /recommend scores the whole catalogue
    events: EventsSpec | None = None
    gate: GateSpec | None = None  # None: not published by the retrain loop
    uncertainty: UncertaintySpec | None = None  # None: the model gives no intervals (MLPs)
    files: dict[str, str]
    tensorflow_version: str = ""
    keras_version: str = ""


def read_manifest(version_dir: Path) -> Manifest:
    """Parse and check `version_dir/manifest.json`.

    Raises:
        ArtifactError: missing, not JSON, another format version, fields missing or wrong, or
            a version number other than its directory's.
    """
    path = version_dir / MANIFEST
    raw = read_json(path, "missing (not a complete exported version)")
    if not isinstance(raw, dict):
        raise ArtifactError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format_version {raw.get('format_version')!r}, this service reads "
            f"{FORMAT_VERSION}"
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ArtifactError(f"{path}: {problems}") from None
    if is_version_name(version_dir.name) and manifest.version != int(version_dir.name):
        raise ArtifactError(
            f"{path}: says version {manifest.version} but lives in directory {version_dir.name}"
        )
    return manifest


def write_manifest(version_dir: Path, manifest: Manifest) -> None:
    """Write `manifest` as strict JSON (metrics that could not be computed become null)."""
    write_json(version_dir / MANIFEST, manifest.model_dump(mode="json"))
