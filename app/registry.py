"""Find exported versions, load one, check it against its manifest, and hold what is served."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.manifest import ArtifactError, Manifest, read_json_artifact, read_manifest

log = logging.getLogger("app.registry")

# The SavedModel and the numpy factors must agree this closely on the warm-up pairs.
CONSISTENCY_TOLERANCE = 1e-3


class NoServableVersion(Exception):
    """No version under the models directory could be loaded; the message says why."""


@dataclass(frozen=True)
class VectorSet:
    """One way to rank items: score = item_factors @ user_factors[u] (+ item_bias)."""

    source: str  # the model that made them: "retrieval", or a rating model's kind
    user_factors: np.ndarray  # (users, K) float32, memory-mapped
    item_factors: np.ndarray  # (items, K) float32, memory-mapped
    item_bias: np.ndarray | None  # (items,)
    user_offset: np.ndarray | None  # (users,) global_mean + user_bias, when score is a rating


@dataclass(frozen=True)
class Bundle:
    """One loaded, checked version: everything /predict and /recommend read."""

    name: str
    version: int
    path: Path
    manifest: Manifest
    user_index: dict[str, int]
    item_index: dict[str, int]
    item_ids: list[str]
    vectors: VectorSet  # what /recommend ranks with by default
    rating_vectors: VectorSet  # the rating model's factors (?by=rating)
    seen_indptr: np.ndarray  # (users + 1,) int64
    seen_indices: np.ndarray  # int32 item rows, sorted within each user
    titles: list[str | None] | None
    genres: list[list[str]] | None
    predict_ratings: Callable[[list[str], list[str]], np.ndarray]
    saved_model: Any  # the loaded SavedModel; its signature needs it alive

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def list_versions(base: Path) -> list[int]:
    """Integer-named version directories under `base`, newest first (staging dirs are hidden)."""
    if not base.is_dir():
        return []
    return sorted(
        (
            int(p.name)
            for p in base.iterdir()
            if p.name.isascii() and p.name.isdigit() and p.is_dir()
        ),
        reverse=True,
    )


def load_served(
    models_dir: Path,
    name: str,
    pinned: int | None = None,
    refused: dict[int, str] | None = None,
) -> Bundle:
    """Load the pinned version, or the newest version that loads; older ones are fallbacks.

    Args:
        refused: if given, filled with version -> reason for each version that did not load.

    Raises:
        NoServableVersion: nothing under `models_dir/name` could be loaded (each reason listed).
    """
    base = models_dir / name
    versions = [pinned] if pinned is not None else list_versions(base)
    if not versions:
        raise NoServableVersion(f"no versions under {base} (run `recsys train` to make one)")
    failed = {} if refused is None else refused
    for version in versions:
        try:
            return load_version(base / str(version))
        except ArtifactError as err:
            log.error("skipping version %s: %s", version, err)
            failed[version] = str(err)
    raise NoServableVersion("; ".join(failed.values()))


def load_version(path: Path) -> Bundle:
    """Load and check one version directory.

    Raises:
        ArtifactError: a file is missing, altered, malformed or inconsistent (the message says
            which and why), or the SavedModel disagrees with the exported factors.
    """
    if not path.is_dir():
        raise ArtifactError(f"{path}: no such version directory")
    manifest = read_manifest(path)
    _verify_files(path, manifest.files)
    user_ids = _read_ids(path / "user_ids.json")
    item_ids = _read_ids(path / "item_ids.json")
    vectors = _read_vectors(path, manifest.recommend, len(user_ids), len(item_ids), manifest)
    rating_spec = manifest.recommend_by_rating
    rating_vectors = (
        _read_vectors(path, rating_spec, len(user_ids), len(item_ids), manifest)
        if rating_spec is not None and rating_spec != manifest.recommend
        else vectors
    )
    indptr = _read_array(path / "seen_indptr.npy", (len(user_ids) + 1,), np.int64)
    indices = _read_array(path / "seen_indices.npy", None, np.int32)
    if indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
        raise ArtifactError(f"{path / 'seen_indptr.npy'}: not a valid CSR index pointer")
    if len(indices) and (indices.min() < 0 or indices.max() >= len(item_ids)):
        raise ArtifactError(
            f"{path / 'seen_indices.npy'}: item rows outside 0..{len(item_ids) - 1}"
        )
    titles, genres = _read_items(path / "items.json", len(item_ids))
    saved_model, predict = _load_saved_model(path, manifest)
    bundle = Bundle(
        name=manifest.name,
        version=manifest.version,
        path=path,
        manifest=manifest,
        user_index={u: i for i, u in enumerate(user_ids)},
        item_index={it: i for i, it in enumerate(item_ids)},
        item_ids=item_ids,
        vectors=vectors,
        rating_vectors=rating_vectors,
        seen_indptr=indptr,
        seen_indices=indices,
        titles=titles,
        genres=genres,
        predict_ratings=predict,
        saved_model=saved_model,
    )
    _warm_up_and_compare(bundle, user_ids)
    return bundle


def _read_vectors(path: Path, spec, n_users: int, n_items: int, manifest: Manifest) -> VectorSet:
    user_factors = _read_array(path / spec.user_factors, (n_users, None))
    k = user_factors.shape[1]
    item_factors = _read_array(path / spec.item_factors, (n_items, k))
    item_bias = _read_array(path / spec.item_bias, (n_items,)) if spec.item_bias else None
    user_offset = None
    if spec.score == "rating":
        user_offset = np.full(n_users, manifest.global_mean, np.float32)
        if spec.user_bias:
            user_offset += _read_array(path / spec.user_bias, (n_users,))
    return VectorSet(spec.source, user_factors, item_factors, item_bias, user_offset)


def _verify_files(path: Path, files: dict[str, str]) -> None:
    for relative, expected in files.items():
        file = path / relative
        if not file.resolve().is_relative_to(path.resolve()):
            raise ArtifactError(f"{path / 'manifest.json'}: file entry {relative!r} leaves the dir")
        if not file.is_file():
            raise ArtifactError(f"{file}: missing (listed in manifest.json)")
        digest = hashlib.sha256()
        with open(file, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            raise ArtifactError(f"{file}: SHA-256 {digest.hexdigest()} != manifest's {expected}")


def _read_ids(path: Path) -> list[str]:
    ids = read_json_artifact(path)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ArtifactError(f"{path}: expected a JSON list of string ids")
    if len(set(ids)) != len(ids):
        raise ArtifactError(f"{path}: {len(ids) - len(set(ids))} duplicate ids")
    return ids


def _read_array(path: Path, shape: tuple[int | None, ...] | None, dtype=np.float32) -> np.ndarray:
    """Memory-map one .npy; `shape` may leave a dimension as None (any size)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path}: not a readable .npy array ({err})") from None
    if array.dtype != dtype:
        raise ArtifactError(f"{path}: dtype {array.dtype}, expected {np.dtype(dtype)}")
    if shape is not None and (
        array.ndim != len(shape)
        or any(
            want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
        )
    ):
        wanted = tuple("any" if d is None else d for d in shape)
        raise ArtifactError(f"{path}: shape {array.shape}, expected {wanted} from the id lists")
    if shape is None and array.ndim != 1:
        raise ArtifactError(f"{path}: {array.ndim}-D, expected 1-D")
    if dtype == np.float32 and not np.isfinite(array).all():
        raise ArtifactError(f"{path}: contains NaN or infinite values")
    # A plain ndarray view of the same mapped pages: np.memmap's Python-level __getitem__ cost
    # ~6 us per index on the /recommend path; the view shares the page cache all the same.
    return np.asarray(array)


def _read_items(path: Path, n_items: int) -> tuple[list[str | None] | None, list[list[str]] | None]:
    if not path.is_file():
        return None, None  # item metadata is optional
    rows = read_json_artifact(path)
    if not isinstance(rows, list) or len(rows) != n_items:
        raise ArtifactError(f"{path}: expected a list of {n_items} items")
    return [r.get("title") for r in rows], [list(r.get("genres") or []) for r in rows]


def _load_saved_model(path: Path, manifest: Manifest):
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as err:  # TF raises many types for a broken SavedModel
        raise ArtifactError(
            f"{path / 'saved_model.pb'}: SavedModel does not load ({err})"
        ) from None
    signature = loaded.signatures.get(manifest.model.signature)
    if signature is None:
        raise ArtifactError(
            f"{path / 'saved_model.pb'}: no signature {manifest.model.signature!r} "
            f"(has {sorted(loaded.signatures)})"
        )
    inputs = set(signature.structured_input_signature[1])
    if inputs != {"user_id", "item_id"} or "rating" not in signature.structured_outputs:
        raise ArtifactError(
            f"{path / 'saved_model.pb'}: signature takes {sorted(inputs)} and returns "
            f"{sorted(signature.structured_outputs)}; expected user_id, item_id -> rating"
        )

    def predict(user_ids: list[str], item_ids: list[str]) -> np.ndarray:
        out = signature(
            user_id=tf.constant(user_ids, tf.string), item_id=tf.constant(item_ids, tf.string)
        )
        return out["rating"].numpy()

    return loaded, predict


def _warm_up_and_compare(bundle: Bundle, user_ids: list[str]) -> None:
    """Run the SavedModel once (so the first request is not slow) and, where the factors
    reproduce the rating, check both give the same numbers."""
    if not user_ids or not bundle.item_ids:
        raise ArtifactError(f"{bundle.path}: no users or no items")
    rows = np.linspace(0, len(user_ids) - 1, num=min(8, len(user_ids))).astype(int)
    cols = np.linspace(0, bundle.n_items - 1, num=len(rows)).astype(int)
    served = bundle.predict_ratings([user_ids[r] for r in rows], [bundle.item_ids[c] for c in cols])
    vectors = bundle.rating_vectors
    if vectors.user_offset is None:
        return
    low, high = bundle.manifest.rating_range
    expected = np.einsum("ij,ij->i", vectors.user_factors[rows], vectors.item_factors[cols])
    expected = expected + vectors.user_offset[rows]
    if vectors.item_bias is not None:
        expected = expected + vectors.item_bias[cols]
    gap = float(np.max(np.abs(np.clip(expected, low, high) - served)))
    if gap > CONSISTENCY_TOLERANCE:
        raise ArtifactError(
            f"{bundle.path / 'saved_model.pb'}: SavedModel and factor files disagree by {gap:.4g}"
        )
