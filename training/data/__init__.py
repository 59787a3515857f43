"""Ratings data: loaders per source format, fetching, splits and a synthetic generator."""

from training.data.loaders import RatingsData, load_dataset, load_files
from training.data.split import IdIndex, Split, split_ratings

__all__ = ["IdIndex", "RatingsData", "Split", "load_dataset", "load_files", "split_ratings"]
