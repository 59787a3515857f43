"""Write a trained model as one version directory in TensorFlow Serving's layout.

`models/<name>/<version>/` holds:
- `saved_model.pb`, `variables/`: a SavedModel whose `serving_default` signature takes 1-D string
  tensors `user_id` and `item_id` (raw external ids; the id->row lookup is in the graph, unknown
  ids fall back to the model's out-of-vocabulary row) and returns `rating`, float32, clipped to
  the rating range. `tensorflow_model_server --model_base_path=models/<name>` serves it as is.
- `user_factors.npy`, `item_factors.npy` and, for models with biases, `user_bias.npy`,
  `item_bias.npy`: float32 arrays the
  service memory-maps for top-N; row i belongs to the i-th id of `user_ids.json`/`item_ids.json`.
- `seen_indptr.npy`, `seen_indices.npy`: each user's rated items (CSR), excluded from top-N;
  `seen_ratings.npy`, `seen_timestamps.npy`: the rating and time of each (GET /users/{id}/ratings).
- `items.json`: title and genres per item row, when the data had item metadata, and
  `item_columns.npz`, the same as arrays (what the service reads: `artifact.item_columns`).
- `manifest.json`: what the version is, how it scored, and the SHA-256 of every other file.

Everything is written into a hidden staging directory and renamed into place when complete, so
a reader never sees a half-written version.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from artifact import ann
from artifact.checksums import checksums_of
from artifact.files import title_year
from artifact.item_columns import write_item_columns
from artifact.jsonsafe import write_json
from artifact.layout import (
    ITEM_COLUMNS,
    ITEM_IDS,
    ITEM_ITEM,
    ITEMS,
    RANKER_HIDDEN,
    RANKER_ITEMS,
    RANKER_OUTPUT,
    RETRIEVAL_PREFIX,
    SIGNATURE,
    STAGING_PREFIX,
    USER_IDS,
    array_file,
    next_version,
)
from artifact.manifest import (
    FORMAT_VERSION,
    AnnSpec,
    EventsSpec,
    GateSpec,
    ItemItemSpec,
    Manifest,
    ModelSpec,
    RankerSpec,
    RecommendSpec,
    write_manifest,
)
from artifact.ranker import FEATURES, write_ranker
from training.data.split import IdIndex
from training.evaluation.ranking import seen_items
from training.rating import TrainedModel
from training.retrieval import RetrievalResult

if TYPE_CHECKING:
    from training.ranker import RankerResult


def export_version(
    trained: TrainedModel,
    models_dir: str | Path,
    name: str,
    ratings: pd.DataFrame,
    items: pd.DataFrame | None = None,
    retrieval: RetrievalResult | None = None,
    events: EventsSpec | None = None,
    ann_min_items: int = ann.MIN_ITEMS,
    gate: GateSpec | None = None,
) -> Path:
    """Export `trained` as the next version of `models_dir/name` and return its path.

    Args:
        trained: the trained model, its id indices and metrics.
        models_dir: the models root; the version lands in `models_dir/name/<n>`.
        name: the model name (TF Serving's model name).
        ratings: every rating the model was given (all splits), recorded as each user's seen
            items so /recommend never suggests something the user already rated.
        items: item metadata (item_id, title, genres), if known.
        retrieval: top-N vectors trained on the same ids; when given, /recommend ranks with
            them by default and with the rating model's factors on request.
        events: what the ratings took from the service's event store, if anything.
        gate: how the retrain loop let this version through, when it did.
        ann_min_items: catalogues of at least this many items also get an approximate top-N
            index over /recommend's default vectors (`artifact.ann`).
    """
    base = Path(models_dir) / name
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=base, prefix=STAGING_PREFIX))
    staging.chmod(0o755)  # mkdtemp makes it owner-only; a service running as another user reads it
    try:
        write_saved_model(trained, staging)
        _write_arrays(trained, staging, ratings, items, retrieval)
        index = _write_index(staging, default_spec(trained, retrieval), ann_min_items)
        files = checksums_of(staging)
        return _publish(staging, base, trained, retrieval, files, events, index, gate)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_saved_model(trained: TrainedModel, path: Path) -> None:
    """Write the `serving_default` SavedModel (string ids in, clipped rating out) into `path`."""
    import keras
    import tensorflow as tf

    fit = trained.exported
    model = fit.model
    user_table = _lookup_table(fit.users)
    item_table = _lookup_table(fit.items)
    low, high = trained.rating_range

    def serve(user_id, item_id):
        users = tf.cast(user_table.lookup(user_id), tf.int32)
        items = tf.cast(item_table.lookup(item_id), tf.int32)
        rating = tf.reshape(model({"user": users, "item": items}, training=False), [-1])
        return {"rating": tf.clip_by_value(tf.cast(rating, tf.float32), low, high)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(user_table)
    archive.track(item_table)
    archive.add_endpoint(
        name=SIGNATURE,
        fn=serve,
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([None], tf.string, name="item_id"),
        ],
    )
    archive.write_out(str(path), verbose=False)


def _lookup_table(index: IdIndex):
    import tensorflow as tf

    keys = tf.constant(index.to_list(), dtype=tf.string)
    values = tf.range(len(index), dtype=tf.int64)
    initializer = tf.lookup.KeyValueTensorInitializer(keys, values)
    return tf.lookup.StaticHashTable(initializer, default_value=index.oov)


def _write_arrays(
    trained: TrainedModel,
    out: Path,
    ratings: pd.DataFrame,
    items: pd.DataFrame | None,
    retrieval: RetrievalResult | None,
) -> None:
    fit = trained.exported
    arrays = dict(fit.model.factors_for_export())
    if retrieval is not None:
        vectors = retrieval.exported.model.factors_for_export()
        for kind, theirs, ours in (
            ("users", retrieval.exported.users, fit.users),
            ("items", retrieval.exported.items, fit.items),
        ):
            if theirs.to_list() != ours.to_list():
                raise ValueError(
                    f"retrieval vectors cover {len(theirs)} {kind} but the rating model "
                    f"{len(ours)} (or others): they must be fitted on the same ids"
                )
        arrays.update({RETRIEVAL_PREFIX + name: array for name, array in vectors.items()})
    for name, array in arrays.items():
        np.save(out / array_file(name), np.ascontiguousarray(array, dtype=np.float32))
    if retrieval is not None and retrieval.item_item is not None:
        weights = retrieval.item_item.weights
        np.save(out / ITEM_ITEM, np.ascontiguousarray(weights, dtype=np.float32))
    if retrieval is not None and retrieval.ranker is not None:
        write_ranker(out, retrieval.ranker.weights)
    write_json(out / USER_IDS, fit.users.to_list())
    write_json(out / ITEM_IDS, fit.items.to_list())
    seen_items(fit.users, fit.items, ratings).save(out)
    if items is not None:
        rows = item_metadata(fit.items, items)
        write_json(out / ITEMS, rows)
        write_item_columns(
            out / ITEM_COLUMNS,
            [r["title"] for r in rows],
            [r["genres"] for r in rows],
            [r["year"] for r in rows],
        )


def item_metadata(index: IdIndex, items: pd.DataFrame) -> list[dict[str, Any]]:
    """Title, genres and year for each item row, in row order; items without metadata get
    nulls. The year is the data's own (`year` column) where it has one, else the year the title
    ends with."""
    by_id = items.drop_duplicates("item_id", keep="last").set_index("item_id")
    meta = by_id.reindex(pd.Index(index.to_list(), dtype=object))
    years = meta["year"] if "year" in meta else pd.Series([None] * len(meta))
    return [
        {
            "title": title if isinstance(title, str) else None,
            "genres": list(genres) if isinstance(genres, list | tuple | np.ndarray) else [],
            "year": int(year) if pd.notna(year) else title_year(title),
        }
        for title, genres, year in zip(meta["title"], meta["genres"], years, strict=True)
    ]


def _write_index(staging: Path, spec: RecommendSpec, min_items: int) -> AnnSpec | None:
    """Build and write the approximate index over the default ranking vectors when the
    catalogue has at least `min_items` items; its nprobe is chosen on 500 training users."""
    item_factors = np.load(staging / spec.item_factors, mmap_mode="r")
    if len(item_factors) < min_items:
        return None
    bias = np.load(staging / spec.item_bias) if spec.item_bias else None
    users = np.load(staging / spec.user_factors, mmap_mode="r")
    rng = np.random.default_rng(0)
    sample = np.asarray(users[np.sort(rng.choice(len(users), min(500, len(users)), False))])
    index, built = ann.build(np.asarray(item_factors), bias, sample)
    ann.write(index, staging / ann.ANN_FILE)
    return AnnSpec(file=ann.ANN_FILE, min_items=min_items, **built)


def default_spec(trained: TrainedModel, retrieval: RetrievalResult | None) -> RecommendSpec:
    """/recommend's default vectors: the retrieval vectors when there are some."""
    if retrieval is not None:
        return recommend_spec(retrieval.exported.model, RETRIEVAL_PREFIX)
    return recommend_spec(trained.exported.model)


def _publish(
    staging: Path,
    base: Path,
    trained: TrainedModel,
    retrieval: RetrievalResult | None,
    files: dict[str, str],
    events: EventsSpec | None,
    index: AnnSpec | None = None,
    gate: GateSpec | None = None,
) -> Path:
    """Rename `staging` to the next free version number, retrying if another writer took it."""
    for _ in range(100):
        version = next_version(base)
        built = manifest(trained, retrieval, base.name, version, files, events, index, gate)
        write_manifest(staging, built)
        target = base / str(version)
        try:
            os.rename(staging, target)  # fails if target exists (another trainer got there first)
            return target
        except OSError:
            if not target.exists():
                raise
    raise RuntimeError(f"could not find a free version number under {base}")


def manifest(
    trained: TrainedModel,
    retrieval: RetrievalResult | None,
    name: str,
    version: int,
    files: dict[str, str],
    events: EventsSpec | None = None,
    index: AnnSpec | None = None,
    gate: GateSpec | None = None,
) -> Manifest:
    """The version's manifest, validated by the contract's own model before it is written."""
    import keras
    import tensorflow as tf

    split = trained.split
    metrics = dict(trained.metrics)
    item_item = ranker = None
    if retrieval is not None:
        metrics.update({f"ranking_{part}": m for part, m in retrieval.metrics.items()})
        blended = retrieval.item_item
        if blended is not None:
            metrics.update({f"blend_{part}": m for part, m in blended.metrics.items()})
            item_item = ItemItemSpec(
                weights=ITEM_ITEM,
                blend=blended.blend,
                strength=blended.strength,
                dropout=blended.dropout,
            )
        ranker = ranker_spec(retrieval.ranker)
        if retrieval.ranker is not None:
            metrics.update({f"ranker_{part}": m for part, m in retrieval.ranker.metrics.items()})
    fit = trained.exported
    by_rating = recommend_spec(fit.model)
    return Manifest(
        format_version=FORMAT_VERSION,
        name=name,
        version=version,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        model=ModelSpec(
            kind=trained.config.model,
            factors=trained.config.factors,
            parameters=int(fit.model.count_params()),
            signature=SIGNATURE,
        ),
        global_mean=float(fit.model.global_mean),
        rating_range=trained.rating_range,
        counts={
            "users": len(fit.users),
            "items": len(fit.items),
            "train": len(split.train),
            "validation": len(split.validation),
            "test": len(split.test),
        },
        metrics=metrics,
        training=trained.summary(),
        retrieval=retrieval.summary() if retrieval is not None else None,
        # /recommend's default vectors, and the rating model's for ?by=rating.
        recommend=default_spec(trained, retrieval),
        recommend_by_rating=by_rating,
        item_item=item_item,
        ranker=ranker,
        ann=index,
        events=events,
        gate=gate,
        uncertainty=trained.uncertainty,
        files=files,
        tensorflow_version=tf.__version__,
        keras_version=keras.__version__,
    )


def ranker_spec(ranker: RankerResult | None) -> RankerSpec | None:
    """The manifest's record of the ranker's files and settings."""
    if ranker is None:
        return None
    w = ranker.weights
    return RankerSpec(
        items=RANKER_ITEMS, hidden=RANKER_HIDDEN, output=RANKER_OUTPUT, features=list(FEATURES),
        mean=[float(v) for v in w.mean], scale=[float(v) for v in w.scale],
        genres=ranker.genres, per_source=w.per_source, width=ranker.width, epochs=ranker.epochs,
    )  # fmt: skip


def recommend_spec(model: Any, prefix: str = "") -> RecommendSpec:
    """Which exported arrays rank items for `model` and what their score means (see
    `artifact.manifest.RecommendSpec`)."""
    arrays = model.factors_for_export()
    return RecommendSpec(
        source=model.kind,
        user_factors=array_file("user_factors", prefix),
        item_factors=array_file("item_factors", prefix),
        item_bias=array_file("item_bias", prefix) if "item_bias" in arrays else None,
        user_bias=array_file("user_bias", prefix) if "user_bias" in arrays else None,
        score=model.score,
    )
