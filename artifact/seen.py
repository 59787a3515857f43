"""Each user's rated items as CSR (`seen_indptr.npy`, `seen_indices.npy`): the items top-N never
recommends back; with the rating and time of each (`seen_ratings.npy`, `seen_timestamps.npy`),
what the version learned each user from. A dense users x items matrix would be 3.7 GB at ml-20m;
this is O(ratings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artifact.errors import ArtifactError
from artifact.files import read_array
from artifact.layout import SEEN_INDICES, SEEN_INDPTR, SEEN_RATINGS, SEEN_TIMESTAMPS


@dataclass(frozen=True)
class SeenItems:
    """Row u's items are `indices[indptr[u]:indptr[u + 1]]`, sorted, without repeats."""

    indptr: np.ndarray  # (users + 1,) int64
    indices: np.ndarray  # int32 item rows
    ratings: np.ndarray | None = None  # float32, aligned with indices
    timestamps: np.ndarray | None = None  # int64 seconds, aligned with indices

    @classmethod
    def from_pairs(
        cls,
        user_rows: np.ndarray,
        item_rows: np.ndarray,
        n_users: int,
        n_items: int,
        ratings: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
    ) -> SeenItems:
        """From (user row, item row) pairs, with their ratings and times if given; of a pair
        given twice the last one counts."""
        pairs = user_rows.astype(np.int64) * n_items + item_rows.astype(np.int64)
        order = np.argsort(pairs, kind="stable")
        ordered = pairs[order]
        last = np.ones(len(ordered), bool)
        last[:-1] = ordered[1:] != ordered[:-1]
        keep = order[last]
        unique = pairs[keep]
        counts = np.bincount(unique // n_items, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(
            indptr,
            (unique % n_items).astype(np.int32),
            None if ratings is None else np.asarray(ratings, np.float32)[keep],
            None if timestamps is None else np.asarray(timestamps, np.int64)[keep],
        )

    @classmethod
    def read(cls, version_dir: Path, n_users: int, n_items: int) -> SeenItems:
        """Read and check a version's CSR against its id lists.

        Raises:
            ArtifactError: a file is missing or malformed, not a CSR pointer, or points past
                the catalogue.
        """
        indptr = read_array(version_dir / SEEN_INDPTR, (n_users + 1,), np.int64)
        indices = read_array(version_dir / SEEN_INDICES, None, np.int32)
        if indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
            raise ArtifactError(f"{version_dir / SEEN_INDPTR}: not a valid CSR index pointer")
        if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
            raise ArtifactError(f"{version_dir / SEEN_INDICES}: item rows outside 0..{n_items - 1}")
        ratings = timestamps = None
        if (version_dir / SEEN_RATINGS).is_file():  # older versions have neither
            ratings = read_array(version_dir / SEEN_RATINGS, (len(indices),), np.float32)
            timestamps = read_array(version_dir / SEEN_TIMESTAMPS, (len(indices),), np.int64)
        return cls(indptr, indices, ratings, timestamps)

    def save(self, version_dir: Path) -> None:
        np.save(version_dir / SEEN_INDPTR, self.indptr)
        np.save(version_dir / SEEN_INDICES, self.indices)
        if self.ratings is not None and self.timestamps is not None:
            np.save(version_dir / SEEN_RATINGS, self.ratings)
            np.save(version_dir / SEEN_TIMESTAMPS, self.timestamps)

    def of(self, row: int) -> np.ndarray:
        """The item rows user `row` has seen."""
        return self.indices[self.indptr[row] : self.indptr[row + 1]]

    def of_rows(self, rows: np.ndarray) -> list[np.ndarray]:
        """`of(row)` for each of `rows`, in order (one exclusion list per query for top_n)."""
        indptr, indices = self.indptr, self.indices
        return [indices[indptr[r] : indptr[r + 1]] for r in rows.tolist()]
