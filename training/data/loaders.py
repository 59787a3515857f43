"""Load ratings (and item metadata) for training: a fetched data set by name, or a user's own
files in any supported form (`training.data.formats`)."""

from __future__ import annotations

from pathlib import Path

from training.data.datasets import Scale, dataset
from training.data.formats import read_items_file, read_ratings_file
from training.data.ratings import RatingsData


def load_dataset(
    name: str, data_dir: str | Path = "data", scale: Scale | None = None
) -> RatingsData:
    """Load a data set that `recsys fetch` put under `data_dir/name`; a rating outside its
    published scale (or `scale`) is refused with its line number.

    Raises:
        FileNotFoundError: nothing fetched there yet (the message says which command fetches it).
    """
    record = dataset(name)
    root = Path(data_dir) / name
    for ratings_name, items_name in record.files:
        ratings_path = root / ratings_name
        if ratings_path.is_file():
            items_path = root / items_name if items_name else None
            items = read_items_file(items_path) if items_path and items_path.is_file() else None
            ratings = read_ratings_file(ratings_path, scale or record.scale)
            return RatingsData(ratings, items, source=str(ratings_path))
    raise FileNotFoundError(
        f"no {name} ratings under {root}; run `recsys fetch {name} --data-dir {data_dir}` first"
    )


def load_files(
    ratings: str | Path, items: str | Path | None = None, scale: Scale | None = None
) -> RatingsData:
    """Load a user's own ratings file (and optional items file) in any supported form; with
    `scale` (low, high), a rating outside it is refused with its line number."""
    return RatingsData(
        read_ratings_file(ratings, scale),
        read_items_file(items) if items else None,
        source=str(ratings),
    )
