"""Load one exported version, check it against its manifest, and warm it up.

Everything a version holds is read through the contract package (`artifact`): the manifest, the
checksums, the id lists, the memory-mapped arrays and the seen items, each refused with a message
naming the file. The SavedModel is then loaded, run once, and compared with the factor files where
they reproduce its rating; or, for large catalogues (RECSYS_PREDICT_FROM), /predict is answered
from those factor files and the SavedModel is not loaded (`app.serving.predictors`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from app.serving.blend_cache import BlendEntry, RankEntry, TrainedBlends
from app.serving.predictors import PredictFn, factor_predictor, saved_model_predictor
from artifact import ann
from artifact.checksums import verify_checksums
from artifact.errors import ArtifactError
from artifact.files import ItemMetadata, read_array, read_ids, read_item_metadata
from artifact.item_columns import read_item_columns
from artifact.layout import (
    ITEM_COLUMNS,
    ITEM_IDS,
    ITEMS,
    SAVED_MODEL,
    SEEN_RATINGS,
    USER_IDS,
    list_versions,
)
from artifact.manifest import Manifest, RecommendSpec, UncertaintySpec, read_manifest
from artifact.metadata import Genres, Titles, Years
from artifact.posterior import Prior, features, user_features
from artifact.ranker import RankerWeights, read_ranker
from artifact.seen import SeenItems

log = logging.getLogger("app.serving")

# The SavedModel and the numpy factors must agree this closely on the warm-up pairs.
CONSISTENCY_TOLERANCE = 1e-3

NORM_BLOCK = 1 << 16  # rows per block when the item norms are computed
UNIT_COPY_BELOW = 100_000  # items: smaller catalogues keep a unit-length copy (LoadedVersion)

PREDICT_FROM = ("auto", "savedmodel", "factors")  # RECSYS_PREDICT_FROM (app.serving.predictors)
# "auto" answers /predict from the factors from this many items on (where the index starts):
# there the SavedModel and TensorFlow were 1.2 GB of a 1M-item worker's 2.1 GB.
FACTORS_FROM_ITEMS = ann.MIN_ITEMS


class NoServableVersion(Exception):
    """No version under the models directory could be loaded; the message says why."""


@dataclass(frozen=True)
class RankingVectors:
    """One way to rank items: score = item_factors @ user_factors[u] (+ item_bias)."""

    source: str  # the model that made them: "retrieval", or a rating model's kind
    user_factors: np.ndarray  # (users, K) float32, memory-mapped
    item_factors: np.ndarray  # (items, K) float32, memory-mapped
    item_bias: np.ndarray | None  # (items,)
    user_offset: np.ndarray | None  # (users,) global_mean + user_bias, when score is a rating


@dataclass(frozen=True)
class LoadedVersion:
    """One loaded, checked version: everything /predict and /recommend read."""

    name: str
    version: int
    path: Path
    manifest: Manifest
    user_index: dict[str, int]
    item_index: dict[str, int]
    item_ids: list[str]
    vectors: RankingVectors  # what /recommend ranks with by default
    rating_vectors: RankingVectors  # the rating model's factors (?by=rating)
    seen: SeenItems
    item_item: np.ndarray | None  # (items, items) weights blended into the default ranking
    ranker: RankerWeights | None  # the learned second stage over the blend (artifact.ranker)
    ann: Any  # the approximate top-N index over `vectors` (artifact.ann), memory-mapped; or None
    titles: Titles | None  # artifact.metadata: arrays that read like lists
    genres: Genres | None
    years: Years | None
    predict_ratings: PredictFn
    predict_from: str  # what predict_ratings runs: "savedmodel", or "factors" (no TensorFlow)
    saved_model: Any  # the loaded SavedModel (its signature needs it alive); None with factors

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @cached_property
    def posterior(self) -> RatingPosterior | None:
        """/predict's intervals' item features and prior, computed once per version."""
        return rating_posterior(self)

    @cached_property
    def trained_blends(self) -> TrainedBlends[BlendEntry]:
        """Trained users' item-item scores, kept while this version is loaded
        (`app.serving.blend_cache`)."""
        return TrainedBlends()

    @cached_property
    def trained_ranks(self) -> TrainedBlends[RankEntry]:
        """Trained users' candidates and the ranker's scores of them, kept the same way
        (`app.ranking.second_stage`)."""
        return TrainedBlends()

    @cached_property
    def item_norms(self) -> np.ndarray:
        """The default ranking vectors' item norms, (items,) float32 floored at 1e-12, for
        /similar's cosine and the diversity re-ranking; computed once per version (load_version
        warms it), a block of rows at a time. A unit-length copy of the catalogue, which this
        spares at large catalogues, was 253 MB per worker at 1M items."""
        items = self.vectors.item_factors
        norms = np.empty(len(items), np.float32)
        for start in range(0, len(items), NORM_BLOCK):
            block = np.asarray(items[start : start + NORM_BLOCK], np.float32)
            norms[start : start + NORM_BLOCK] = np.linalg.norm(block, axis=1)
        out: np.ndarray = np.maximum(norms, np.float32(1e-12))
        return out

    @cached_property
    def unit_items(self) -> np.ndarray | None:
        """The same rows scaled to unit length, for catalogues under UNIT_COPY_BELOW items (at
        most 25 MB at 64 factors): /similar's cosines are then the copy's, to the bit as they
        always were. From there on, None: the cosines come from the norms (float32 rounding
        apart, the same numbers) and the copy's memory is spared."""
        if self.n_items >= UNIT_COPY_BELOW:
            return None
        unit: np.ndarray = self.vectors.item_factors / self.item_norms[:, None]
        return unit

    def unit_rows(self, rows: np.ndarray) -> np.ndarray:
        """The default ranking vectors of item `rows` scaled to unit length."""
        unit: np.ndarray = self.vectors.item_factors[rows] / self.item_norms[rows, None]
        return unit


@dataclass(frozen=True)
class RatingPosterior:
    """What /predict's intervals need of a version (`artifact.posterior`). The item features
    are made for the rows asked, from the mapped factors: a float64 copy of the catalogue's
    was 0.5 GB per worker at 1M items."""

    item_factors: np.ndarray  # (items, K) float32, memory-mapped
    item_bias: np.ndarray | None  # (items,): with biases each feature row ends in a 1
    prior: Prior
    spec: UncertaintySpec

    @property
    def dim(self) -> int:
        return int(self.item_factors.shape[1]) + (self.item_bias is not None)

    def features(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), dim) float64: `artifact.posterior.features` of those item rows."""
        return features(self.item_factors[rows], self.item_bias)  # the bias: only whether


def rating_posterior(loaded: LoadedVersion) -> RatingPosterior | None:
    """The item features and users' prior of the rating model's factors, when its manifest
    calibrated intervals (None: the model gives none, as the MLPs)."""
    spec, vectors = loaded.manifest.uncertainty, loaded.rating_vectors
    if spec is None or vectors.user_offset is None:
        return None
    user_bias = None
    if vectors.item_bias is not None:
        user_bias = np.asarray(vectors.user_offset, np.float64) - loaded.manifest.global_mean
    return RatingPosterior(
        vectors.item_factors,
        vectors.item_bias,
        Prior.of(user_features(vectors.user_factors, user_bias)),
        spec,
    )


def load_newest(
    base: Path,
    pinned: int | None = None,
    refused: dict[int, str] | None = None,
    approximate: bool = True,
    predict_from: str = "auto",
) -> LoadedVersion:
    """Load the pinned version, or the newest version under `base` that loads; older ones are
    fallbacks.

    Args:
        refused: if given, filled with version -> reason for each version that did not load.

    Raises:
        NoServableVersion: nothing under `base` could be loaded (each reason listed).
    """
    versions = [pinned] if pinned is not None else list_versions(base)
    if not versions:
        raise NoServableVersion(f"no versions under {base} (run `recsys train` to make one)")
    failed = {} if refused is None else refused
    for version in versions:
        try:
            return load_version(base / str(version), approximate, predict_from)
        except ArtifactError as err:
            log.error("skipping version %s: %s", version, err)
            failed[version] = str(err)
    raise NoServableVersion("; ".join(failed.values()))


def load_version(path: Path, approximate: bool = True, predict_from: str = "auto") -> LoadedVersion:
    """Load and check one version directory; with `approximate` off, its approximate top-N
    index (if any) is checked like every file but not loaded, and /recommend stays exact.
    `predict_from="factors"` answers /predict from the factor files where they reproduce the
    rating, without loading the SavedModel (`app.serving.predictors`); other models still load it.
    "auto" does so for catalogues of FACTORS_FROM_ITEMS items or more, and loads the SavedModel
    below.

    Raises:
        ArtifactError: a file is missing, altered, malformed or inconsistent (the message says
            which and why), or the SavedModel disagrees with the exported factors.
    """
    if predict_from not in PREDICT_FROM:
        raise ValueError(f"predict_from must be one of {PREDICT_FROM}, not {predict_from!r}")
    if not path.is_dir():
        raise ArtifactError(f"{path}: no such version directory")
    manifest = read_manifest(path)
    verify_checksums(path, manifest.files)
    user_ids = read_ids(path / USER_IDS)
    item_ids = read_ids(path / ITEM_IDS)
    n_users, n_items = len(user_ids), len(item_ids)
    vectors = _read_vectors(path, manifest.recommend, n_users, n_items, manifest.global_mean)
    by_rating = manifest.recommend_by_rating
    rating_vectors = (
        _read_vectors(path, by_rating, n_users, n_items, manifest.global_mean)
        if by_rating is not None and by_rating != manifest.recommend
        else vectors
    )
    seen = SeenItems.read(path, n_users, n_items)
    item_item = None
    if manifest.item_item is not None:
        if seen.ratings is None:
            raise ArtifactError(f"{path / SEEN_RATINGS}: missing, and item_item needs ratings")
        item_item = read_array(path / manifest.item_item.weights, (n_items, n_items))
    ranker = None
    if manifest.ranker is not None:
        if item_item is None:
            raise ArtifactError(f"{path / 'manifest.json'}: a ranker without item_item weights")
        ranker = read_ranker(path, manifest.ranker, n_items)
    index = None
    if manifest.ann is not None and approximate:
        factors = vectors.item_factors.shape[1]
        index = ann.load(path / manifest.ann.file, n_items, factors, manifest.ann.nprobe)
    if ITEM_COLUMNS in manifest.files:
        metadata: ItemMetadata | None = ItemMetadata(
            *read_item_columns(path / ITEM_COLUMNS, n_items)
        )
    else:  # a version exported before the columns: its JSON
        metadata = read_item_metadata(path / ITEMS, n_items)
    user_index = {u: i for i, u in enumerate(user_ids)}
    item_index = {it: i for i, it in enumerate(item_ids)}
    offset = rating_vectors.user_offset
    from_factors = predict_from == "factors" or (
        predict_from == "auto" and n_items >= FACTORS_FROM_ITEMS
    )
    if from_factors and offset is not None:
        predict_from, saved_model = "factors", None
        predict = factor_predictor(
            user_index,
            item_index,
            rating_vectors.user_factors,
            offset,
            rating_vectors.item_factors,
            rating_vectors.item_bias,
            manifest.rating_range,
            manifest.global_mean,
        )
    else:
        predict_from = "savedmodel"
        saved_model, predict = saved_model_predictor(path, manifest)
    loaded = LoadedVersion(
        name=manifest.name,
        version=manifest.version,
        path=path,
        manifest=manifest,
        user_index=user_index,
        item_index=item_index,
        item_ids=item_ids,
        vectors=vectors,
        rating_vectors=rating_vectors,
        seen=seen,
        item_item=item_item,
        ranker=ranker,
        ann=index,
        titles=metadata.titles if metadata else None,
        genres=metadata.genres if metadata else None,
        years=metadata.years if metadata else None,
        predict_ratings=predict,
        predict_from=predict_from,
        saved_model=saved_model,
    )
    _warm_up_and_compare(loaded, user_ids)
    _ = loaded.item_norms, loaded.unit_items, loaded.posterior
    return loaded


def _read_vectors(
    path: Path, spec: RecommendSpec, n_users: int, n_items: int, global_mean: float
) -> RankingVectors:
    user_factors = read_array(path / spec.user_factors, (n_users, None))
    k = user_factors.shape[1]
    item_factors = read_array(path / spec.item_factors, (n_items, k))
    item_bias = read_array(path / spec.item_bias, (n_items,)) if spec.item_bias else None
    user_offset = None
    if spec.score == "rating":
        user_offset = np.full(n_users, global_mean, np.float32)
        if spec.user_bias:
            user_offset += read_array(path / spec.user_bias, (n_users,))
    return RankingVectors(spec.source, user_factors, item_factors, item_bias, user_offset)


def _warm_up_and_compare(loaded: LoadedVersion, user_ids: list[str]) -> None:
    """Run the SavedModel once (so the first request is not slow) and, where the factors
    reproduce the rating, check both give the same numbers. Answering from the factors, there
    is nothing to compare: the predictor is that formula (the export checked the SavedModel)."""
    if not user_ids or not loaded.item_ids:
        raise ArtifactError(f"{loaded.path}: no users or no items")
    rows = np.linspace(0, len(user_ids) - 1, num=min(8, len(user_ids))).astype(int)
    cols = np.linspace(0, loaded.n_items - 1, num=len(rows)).astype(int)
    served = loaded.predict_ratings([user_ids[r] for r in rows], [loaded.item_ids[c] for c in cols])
    vectors = loaded.rating_vectors
    if vectors.user_offset is None or loaded.predict_from == "factors":
        return
    low, high = loaded.manifest.rating_range
    expected = np.einsum("ij,ij->i", vectors.user_factors[rows], vectors.item_factors[cols])
    expected = expected + vectors.user_offset[rows]
    if vectors.item_bias is not None:
        expected = expected + vectors.item_bias[cols]
    gap = float(np.max(np.abs(np.clip(expected, low, high) - served)))
    if gap > CONSISTENCY_TOLERANCE:
        raise ArtifactError(
            f"{loaded.path / SAVED_MODEL}: SavedModel and factor files disagree by {gap:.4g}"
        )
