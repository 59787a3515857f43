"""Where things live: `<models_dir>/<name>/<version>/` and the files inside a version.

A version is an integer-named directory (TensorFlow Serving's layout). The exporter writes into a
hidden staging directory and renames it into place when complete, so a directory that is not
all digits is never a version, and a reader never sees a half-written one.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"
SAVED_MODEL = "saved_model.pb"
SIGNATURE = "serving_default"
USER_IDS = "user_ids.json"
ITEM_IDS = "item_ids.json"
ITEMS = "items.json"  # title and genres per item row (optional)
ITEM_COLUMNS = "item_columns.npz"  # the same as arrays (artifact.item_columns; older: absent)
SEEN_INDPTR = "seen_indptr.npy"
SEEN_INDICES = "seen_indices.npy"
SEEN_RATINGS = "seen_ratings.npy"  # the rating of each seen item (optional: older versions)
SEEN_TIMESTAMPS = "seen_timestamps.npy"  # and when it was given (0: the data had no time)
ITEM_ITEM = "item_item.npy"  # items x items weights blended into /recommend (optional)
# The learned second stage (artifact.ranker), optional: its item table and network.
RANKER_ITEMS = "ranker_items.npy"
RANKER_HIDDEN = "ranker_hidden.npy"
RANKER_OUTPUT = "ranker_output.npy"
STAGING_PREFIX = ".staging-"

# The rating model's arrays; the retrieval vectors carry this prefix in front of the same names.
USER_FACTORS = "user_factors.npy"
ITEM_FACTORS = "item_factors.npy"
USER_BIAS = "user_bias.npy"
ITEM_BIAS = "item_bias.npy"
RETRIEVAL_PREFIX = "retrieval_"


def array_file(name: str, prefix: str = "") -> str:
    """The file of one exported array: `user_factors` -> `user_factors.npy` (with `prefix`,
    `retrieval_user_factors.npy`)."""
    return f"{prefix}{name}.npy"


def list_versions(base: Path) -> list[int]:
    """Integer-named version directories under `base`, newest first (staging dirs are hidden)."""
    if not base.is_dir():
        return []
    return sorted(
        (int(p.name) for p in base.iterdir() if is_version_name(p.name) and p.is_dir()),
        reverse=True,
    )


def next_version(base: Path) -> int:
    """One more than the highest version under `base` (1 if none)."""
    return max(list_versions(base), default=0) + 1


def is_version_name(name: str) -> bool:
    """Whether a directory called `name` is a version (ASCII digits only)."""
    return name.isascii() and name.isdigit()
