"""Write a trained model as one version directory in TensorFlow Serving's layout.

`models/<name>/<version>/` holds:
- `saved_model.pb`, `variables/`: a SavedModel whose `serving_default` signature takes 1-D string
  tensors `user_id` and `item_id` (raw external ids; the id->row lookup is in the graph, unknown
  ids fall back to the model's out-of-vocabulary row) and returns `rating`, float32, clipped to
  the rating range. `tensorflow_model_server --model_base_path=models/<name>` serves it as is.
- `user_factors.npy`, `item_factors.npy` and, for models with biases, `user_bias.npy`,
  `item_bias.npy`: float32 arrays the
  service memory-maps for top-N; row i belongs to the i-th id of `user_ids.json`/`item_ids.json`.
- `seen_indptr.npy`, `seen_indices.npy`: each user's rated items (CSR), excluded from top-N.
- `items.json`: title and genres per item row, when the data had item metadata.
- `manifest.json`: what the version is, how it scored, and the SHA-256 of every other file.

Everything is written into a hidden staging directory and renamed into place when complete, so
a reader never sees a half-written version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.jsonsafe import replace_nonfinite
from app.manifest import FORMAT_VERSION, MANIFEST  # the contract the service reads back
from app.registry import list_versions  # numbered by the rule the service reads them by
from training.data.split import IdIndex
from training.ranking import seen_csr
from training.retrieval import RetrievalResult
from training.train import TrainedModel

RETRIEVAL_PREFIX = "retrieval_"


def export_version(
    trained: TrainedModel,
    models_dir: str | Path,
    name: str,
    ratings: pd.DataFrame,
    items: pd.DataFrame | None = None,
    retrieval: RetrievalResult | None = None,
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
    """
    base = Path(models_dir) / name
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=base, prefix=".staging-"))
    staging.chmod(0o755)  # mkdtemp makes it owner-only; a service running as another user reads it
    try:
        write_saved_model(trained, staging)
        _write_arrays(trained, staging, ratings, items, retrieval)
        files = {
            str(p.relative_to(staging)): _sha256(p)
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        return _publish(staging, base, trained, retrieval, files)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_saved_model(trained: TrainedModel, path: Path) -> None:
    """Write the `serving_default` SavedModel (string ids in, clipped rating out) into `path`."""
    import keras
    import tensorflow as tf

    model = trained.model
    user_table = _lookup_table(trained.users)
    item_table = _lookup_table(trained.items)
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
        name="serving_default",
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
    arrays = dict(trained.model.factors_for_export())
    if retrieval is not None:
        vectors = retrieval.model.factors_for_export()
        for kind, theirs, ours in (
            ("users", retrieval.users, trained.users),
            ("items", retrieval.items, trained.items),
        ):
            if theirs.to_list() != ours.to_list():
                raise ValueError(
                    f"retrieval vectors cover {len(theirs)} {kind} but the rating model "
                    f"{len(ours)} (or others): they must be fitted on the same ids"
                )
        arrays.update({f"{RETRIEVAL_PREFIX}{name}": array for name, array in vectors.items()})
    for filename, array in arrays.items():
        np.save(out / f"{filename}.npy", np.ascontiguousarray(array, dtype=np.float32))
    _write_json(out / "user_ids.json", trained.users.to_list())
    _write_json(out / "item_ids.json", trained.items.to_list())
    indptr, indices = seen_csr(trained.users, trained.items, ratings)
    np.save(out / "seen_indptr.npy", indptr)
    np.save(out / "seen_indices.npy", indices)
    if items is not None:
        _write_json(out / "items.json", item_metadata(trained.items, items))


def item_metadata(index: IdIndex, items: pd.DataFrame) -> list[dict[str, Any]]:
    """Title and genres for each item row, in row order; items without metadata get nulls."""
    by_id = items.drop_duplicates("item_id", keep="last").set_index("item_id")
    meta = by_id.reindex(pd.Index(index.to_list(), dtype=object))
    return [
        {
            "title": title if isinstance(title, str) else None,
            "genres": list(genres) if isinstance(genres, list | tuple | np.ndarray) else [],
        }
        for title, genres in zip(meta["title"], meta["genres"], strict=True)
    ]


def _publish(
    staging: Path,
    base: Path,
    trained: TrainedModel,
    retrieval: RetrievalResult | None,
    files: dict[str, str],
) -> Path:
    """Rename `staging` to the next free version number, retrying if another writer took it."""
    for _ in range(100):
        version = next_version(base)
        _write_json(staging / MANIFEST, manifest(trained, retrieval, base.name, version, files))
        target = base / str(version)
        try:
            os.rename(staging, target)  # fails if target exists (another trainer got there first)
            return target
        except OSError:
            if not target.exists():
                raise
    raise RuntimeError(f"could not find a free version number under {base}")


def next_version(base: Path) -> int:
    """One more than the highest integer-named directory under `base` (1 if none)."""
    return max(list_versions(base), default=0) + 1


def manifest(
    trained: TrainedModel,
    retrieval: RetrievalResult | None,
    name: str,
    version: int,
    files: dict[str, str],
) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    split = trained.split
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "kind": trained.config.model,
            "factors": trained.config.factors,
            "parameters": int(trained.model.count_params()),
            "signature": "serving_default",
            "inputs": {"user_id": "string[None]", "item_id": "string[None]"},
            "outputs": {"rating": "float32[None]"},
        },
        "global_mean": trained.global_mean,
        "rating_range": list(trained.rating_range),
        "counts": {
            "users": len(trained.users),
            "items": len(trained.items),
            "train": len(split.train),
            "validation": len(split.validation),
            "test": len(split.test),
        },
        "metrics": {
            **trained.metrics,
            **(
                {f"ranking_{part}": m for part, m in retrieval.metrics.items()}
                if retrieval is not None
                else {}
            ),
        },
        "training": trained.summary(),
        "retrieval": retrieval.summary() if retrieval is not None else None,
        # /recommend's default vectors, and the rating model's for ?by=rating.
        "recommend": (
            recommend_spec(retrieval.model, RETRIEVAL_PREFIX)
            if retrieval is not None
            else recommend_spec(trained.model)
        ),
        "recommend_by_rating": recommend_spec(trained.model),
        "files": files,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
    }


def recommend_spec(model, prefix: str = "") -> dict[str, Any]:
    """How /recommend scores items with the exported arrays.

    score = user_factors[u] @ item_factors.T (+ item_bias); when `score` is "rating" the arrays
    reproduce the model exactly and global_mean + user_bias[u] is added, so the score is the
    predicted rating before clipping. "dot" marks embeddings taken from a model whose own score
    is not their dot product (MLPs, the residual hybrid's side branch).
    """
    arrays = model.factors_for_export()
    return {
        "source": model.kind,
        "user_factors": f"{prefix}user_factors.npy",
        "item_factors": f"{prefix}item_factors.npy",
        "item_bias": f"{prefix}item_bias.npy" if "item_bias" in arrays else None,
        "user_bias": f"{prefix}user_bias.npy" if "user_bias" in arrays else None,
        "score": model.score,
        "seen": "every rating given to training (all splits)",
    }


def _write_json(path: Path, value: Any) -> None:
    """Strict JSON: a metric that could not be computed (NaN, e.g. no validation user with a
    relevant item) is written as null, not as the NaN that only some parsers accept."""
    strict = replace_nonfinite(value, lambda _: None)
    text = json.dumps(strict, ensure_ascii=False, indent=1, allow_nan=False)
    path.write_text(text, encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
