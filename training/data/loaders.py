"""Readers for every common MovieLens form, all returning the same `RatingsData`.

Ratings come back as a DataFrame with string columns `user_id`, `item_id`, a float32 `rating`
and, where the source has one, an int64 `timestamp`. Ids stay exactly as the file spells them
(as strings), so `196` in u.data and `"196"` in a request are the same user. Items come back as
`item_id`, `title` and `genres` (a list of strings), or `None` when the source has no metadata.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

RATING_COLUMNS = ["user_id", "item_id", "rating"]

# ml-100k's u.item has one 0/1 column per genre, in this order (the same as u.genre).
ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


@dataclass(frozen=True)
class RatingsData:
    """Explicit ratings plus optional item metadata, ids as strings."""

    ratings: pd.DataFrame
    items: pd.DataFrame | None = None
    source: str = ""

    def __post_init__(self) -> None:
        missing = [c for c in RATING_COLUMNS if c not in self.ratings.columns]
        if missing:
            raise ValueError(f"ratings from {self.source or 'input'} lack columns {missing}")


Scale = tuple[float, float]


def _finish_ratings(
    frame: pd.DataFrame, source: str, header: bool = True, scale: Scale | None = None
) -> pd.DataFrame:
    """Normalise dtypes: string ids, float32 ratings, int64 timestamps; refuse NaN ratings, and
    ratings outside `scale` (low, high) when it is known."""
    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str).str.strip(),
            "item_id": frame["item_id"].astype(str).str.strip(),
            "rating": pd.to_numeric(frame["rating"], errors="coerce").astype("float32"),
        }
    )
    if "timestamp" in frame.columns:
        stamps = pd.to_numeric(frame["timestamp"], errors="coerce")
        out["timestamp"] = stamps.fillna(0).astype("int64")
    if out.empty:
        raise ValueError(f"{source}: no ratings")
    problems = [
        ("ratings are not numbers", out["rating"].isna()),
        ("ratings are infinite or negative", ~np.isfinite(out["rating"]) | (out["rating"] < 0)),
        ("rows have a blank user or item id", (out["user_id"] == "") | (out["item_id"] == "")),
        (
            "rows have a user or item id that is missing",
            frame["user_id"].isna().to_numpy() | frame["item_id"].isna().to_numpy(),
        ),
    ]
    if scale is not None:
        low, high = scale
        outside = (out["rating"] < low) | (out["rating"] > high)
        problems.insert(2, (f"ratings are outside the scale {low:g}-{high:g}", outside))
    for problem, bad in problems:
        rows = np.flatnonzero(np.asarray(bad))
        if len(rows):
            raise ValueError(f"{source}: {len(rows):,} {problem} ({_where(rows, header)})")
    # The same (user, item) twice: keep the latest rating (by timestamp, else the later row).
    order = out.sort_values("timestamp", kind="stable") if "timestamp" in out.columns else out
    duplicated = order.duplicated(["user_id", "item_id"], keep="last")
    if duplicated.any():
        rows = np.sort(order.index[duplicated.to_numpy()].to_numpy())
        print(
            f"{source}: {len(rows):,} repeated (user, item) ratings dropped, the latest of each "
            f"kept ({_where(rows, header)})",
            file=sys.stderr,
        )
        out = out.drop(index=rows)
    return out.reset_index(drop=True)


def _where(rows: np.ndarray, header: bool, shown: int = 5) -> str:
    """Row positions as the file's line numbers (1-based, after a header line if it has one)."""
    lines = ", ".join(str(int(r) + 1 + header) for r in rows[:shown])
    more = f" and {len(rows) - shown:,} more" if len(rows) > shown else ""
    return f"line{'s' if len(rows) > 1 else ''} {lines}{more}"


def _items_frame(item_ids, titles, genres) -> pd.DataFrame:
    return pd.DataFrame(
        {"item_id": pd.Series(item_ids).astype(str).str.strip(), "title": titles, "genres": genres}
    )


# --- ml-100k -------------------------------------------------------------------------------------


def read_ml100k_ratings(path: Path, scale: Scale | None = None) -> pd.DataFrame:
    """u.data: tab-separated user, item, rating, timestamp; no header."""
    frame = pd.read_csv(
        path,
        sep="\t",
        header=None,
        names=["user_id", "item_id", "rating", "timestamp"],
        dtype={"user_id": str, "item_id": str},
    )
    return _finish_ratings(frame, str(path), header=False, scale=scale)


def read_ml100k_items(path: Path) -> pd.DataFrame:
    """u.item: pipe-separated, latin-1, id|title|release|video release|url|19 genre flags."""
    names = ["item_id", "title", "release", "video_release", "url", *ML100K_GENRES]
    frame = pd.read_csv(
        path, sep="|", header=None, names=names, encoding="latin-1", dtype={"item_id": str}
    )
    flags = frame[ML100K_GENRES].fillna(0).astype(int).to_numpy()
    genres = [[g for g, on in zip(ML100K_GENRES, row, strict=True) if on] for row in flags]
    return _items_frame(frame["item_id"], frame["title"].fillna(""), genres)


# --- ml-1m ---------------------------------------------------------------------------------------


def _read_double_colon(path: Path, names: list[str]) -> pd.DataFrame:
    # `::` is a multi-character separator, which only pandas' python engine accepts; splitting
    # lines ourselves is as fast and keeps titles that contain a single ':' intact.
    rows = [
        line.split("::") for line in path.read_text(encoding="latin-1").splitlines() if line.strip()
    ]
    bad = next((i for i, row in enumerate(rows) if len(row) != len(names)), None)
    if bad is not None:
        raise ValueError(
            f"{path}: line {bad + 1} has {len(rows[bad])} '::'-separated fields, "
            f"expected {len(names)} ({', '.join(names)})"
        )
    return pd.DataFrame(rows, columns=names)


def read_ml1m_ratings(path: Path, scale: Scale | None = None) -> pd.DataFrame:
    """ratings.dat: UserID::MovieID::Rating::Timestamp, latin-1."""
    frame = _read_double_colon(path, ["user_id", "item_id", "rating", "timestamp"])
    return _finish_ratings(frame, str(path), header=False, scale=scale)


def read_ml1m_items(path: Path) -> pd.DataFrame:
    """movies.dat: MovieID::Title::Genres (genres `|`-separated), latin-1."""
    frame = _read_double_colon(path, ["item_id", "title", "genres"])
    return _items_frame(frame["item_id"], frame["title"], frame["genres"].map(_split_genres))


# --- ml-20m / ml-25m / ml-latest(-small) / a user's own ratings.csv ------------------------------


def read_ratings_csv(path: Path, scale: Scale | None = None) -> pd.DataFrame:
    """ratings.csv: header userId,movieId,rating[,timestamp] (extra columns are ignored).

    Also reads the Keras tutorials' `edited_rating.csv` (userId,movieId,rating,movie_idx, often
    with a leading unnamed index column): the tutorial's own contiguous `movie_idx` is dropped,
    since the service keeps external ids and builds its own index.
    """
    header = _csv_header(path)
    missing = [c for c in ("userId", "movieId", "rating") if c not in header]
    if missing:
        raise ValueError(
            f"{path}: header {header} lacks {missing}; expected userId,movieId,rating[,timestamp]"
        )
    columns = ["userId", "movieId", "rating"] + (["timestamp"] if "timestamp" in header else [])
    frame = pd.read_csv(path, usecols=columns, dtype={"userId": str, "movieId": str})
    frame = frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
    return _finish_ratings(frame, str(path), scale=scale)


def read_movies_csv(path: Path) -> pd.DataFrame:
    """movies.csv: movieId,title,genres with genres `|`-separated ("(no genres listed)" = none)."""
    header = _csv_header(path)
    missing = [c for c in ("movieId", "title") if c not in header]
    if missing:
        raise ValueError(f"{path}: header {header} lacks {missing}; expected movieId,title,genres")
    frame = pd.read_csv(path, dtype={"movieId": str, "title": str, "genres": str})
    genres = frame["genres"] if "genres" in frame else pd.Series([""] * len(frame))
    return _items_frame(frame["movieId"], frame["title"].fillna(""), genres.map(_split_genres))


# --- RecBole atomic files (the ml-100k copy inside the recbole wheel) ----------------------------


def read_recbole_inter(path: Path, scale: Scale | None = None) -> pd.DataFrame:
    """`.inter`: tab-separated with typed header `user_id:token item_id:token rating:float ...`."""
    frame = pd.read_csv(path, sep="\t", dtype=str)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return _finish_ratings(frame, str(path), scale=scale)


def read_recbole_items(path: Path) -> pd.DataFrame:
    """`.item`: `item_id:token movie_title:token_seq release_year:token class:token_seq`.

    The title and year are rejoined as "Title (1995)", the form GroupLens' own files use, and the
    space-separated `class` becomes the genre list (no ml-100k genre contains a space).
    """
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    years = frame.get("release_year", pd.Series([""] * len(frame)))
    titles = [f"{t} ({y})" if y else t for t, y in zip(frame["movie_title"], years, strict=True)]
    genres = frame.get("class", pd.Series([""] * len(frame))).map(lambda s: s.split())
    return _items_frame(frame["item_id"], titles, genres)


# --- detection -----------------------------------------------------------------------------------


def _csv_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [c.strip() for c in next(csv.reader(fh), [])]


def _split_genres(value: object) -> list[str]:
    if not isinstance(value, str) or value.strip() in ("", "(no genres listed)"):
        return []
    return [g for g in value.split("|") if g]


def read_ratings_file(path: str | Path, scale: Scale | None = None) -> pd.DataFrame:
    """Read ratings from any supported form, recognised by its first line; with `scale`
    (low, high), a rating outside it is refused with its line number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ratings file not found: {path}")
    first = _first_line(path)
    if first.startswith("user_id:"):
        return read_recbole_inter(path, scale)
    if "::" in first:
        return read_ml1m_ratings(path, scale)
    if "\t" in first and first.split("\t")[0].strip().isdigit():
        return read_ml100k_ratings(path, scale)
    return read_ratings_csv(path, scale)


def read_items_file(path: str | Path) -> pd.DataFrame:
    """Read item metadata from any supported form, recognised by its first line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"items file not found: {path}")
    first = _first_line(path)
    if first.startswith("item_id:"):
        return read_recbole_items(path)
    if "::" in first:
        return read_ml1m_items(path)
    if first.startswith("movieId"):
        return read_movies_csv(path)
    if "|" in first:
        return read_ml100k_items(path)
    raise ValueError(
        f"{path}: not an items file this service reads (movies.csv with header "
        "movieId,title,genres; ml-100k u.item; ml-1m movies.dat; RecBole .item)"
    )


def _first_line(path: Path) -> str:
    with open(path, encoding="latin-1") as fh:
        return fh.readline()


# Where each fetched data set keeps its files, relative to data/<name>/.
DATASET_FILES: dict[str, list[tuple[str, str | None]]] = {
    "ml-100k": [("u.data", "u.item"), ("ml-100k.inter", "ml-100k.item")],
    "ml-1m": [("ratings.dat", "movies.dat")],
    "ml-20m": [("ratings.csv", "movies.csv")],
    "ml-25m": [("ratings.csv", "movies.csv")],
    "ml-latest-small": [("ratings.csv", "movies.csv")],
    "ml-latest": [("ratings.csv", "movies.csv")],
}


# GroupLens' published scales: whole stars in the older sets, half stars from ml-20m on.
DATASET_SCALES: dict[str, Scale] = {
    "ml-100k": (1.0, 5.0),
    "ml-1m": (1.0, 5.0),
    "ml-20m": (0.5, 5.0),
    "ml-25m": (0.5, 5.0),
    "ml-latest-small": (0.5, 5.0),
    "ml-latest": (0.5, 5.0),
}


def load_dataset(
    name: str, data_dir: str | Path = "data", scale: Scale | None = None
) -> RatingsData:
    """Load a data set that `recsys fetch` put under `data_dir/name`; a rating outside its
    published scale (or `scale`) is refused with its line number.

    Raises:
        FileNotFoundError: nothing fetched there yet (the message says which command fetches it).
    """
    if name not in DATASET_FILES:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASET_FILES)}")
    root = Path(data_dir) / name
    for ratings_name, items_name in DATASET_FILES[name]:
        ratings_path = root / ratings_name
        if ratings_path.is_file():
            items_path = root / items_name if items_name else None
            items = read_items_file(items_path) if items_path and items_path.is_file() else None
            ratings = read_ratings_file(ratings_path, scale or DATASET_SCALES[name])
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
