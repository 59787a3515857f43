"""Every ratings and items file form this service reads, and the registry that recognises a file
by its first line.

One `Format` per form: how to recognise its ratings file and its items file, and how to read
each. `read_ratings_file` and `read_items_file` try the registry in order; the MovieLens csv form
comes last for ratings, since any other first line is taken for a csv header and checked as one.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.data.datasets import Scale
from training.data.integer_ids import read_integer_ids
from training.data.ratings import clean_ratings, items_frame

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
    return clean_ratings(frame, str(path), header=False, scale=scale)


def read_ml100k_items(path: Path) -> pd.DataFrame:
    """u.item: pipe-separated, latin-1, id|title|release|video release|url|19 genre flags."""
    names = ["item_id", "title", "release", "video_release", "url", *ML100K_GENRES]
    frame = pd.read_csv(
        path, sep="|", header=None, names=names, encoding="latin-1", dtype={"item_id": str}
    )
    flags = frame[ML100K_GENRES].fillna(0).astype(int).to_numpy()
    genres = [[g for g, on in zip(ML100K_GENRES, row, strict=True) if on] for row in flags]
    released = pd.to_datetime(frame["release"], format="%d-%b-%Y", errors="coerce")  # 01-Jan-1995
    years = [int(y) if pd.notna(y) else None for y in released.dt.year]
    return items_frame(frame["item_id"], frame["title"].fillna(""), genres, years)


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
    return clean_ratings(frame, str(path), header=False, scale=scale)


def read_ml1m_items(path: Path) -> pd.DataFrame:
    """movies.dat: MovieID::Title::Genres (genres `|`-separated), latin-1."""
    frame = _read_double_colon(path, ["item_id", "title", "genres"])
    return items_frame(frame["item_id"], frame["title"], frame["genres"].map(_split_genres))


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
    frame = read_integer_ids(path, header, columns)
    if frame is None:  # ids that are not all plain integers: read every spelling as text
        frame = pd.read_csv(path, usecols=columns, dtype={"userId": str, "movieId": str})
    frame = frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
    return clean_ratings(frame, str(path), scale=scale)


def read_movies_csv(path: Path) -> pd.DataFrame:
    """movies.csv: movieId,title,genres with genres `|`-separated ("(no genres listed)" = none)."""
    header = _csv_header(path)
    missing = [c for c in ("movieId", "title") if c not in header]
    if missing:
        raise ValueError(f"{path}: header {header} lacks {missing}; expected movieId,title,genres")
    frame = pd.read_csv(path, dtype={"movieId": str, "title": str, "genres": str})
    genres = frame["genres"] if "genres" in frame else pd.Series([""] * len(frame))
    return items_frame(frame["movieId"], frame["title"].fillna(""), genres.map(_split_genres))


# --- RecBole atomic files (the ml-100k copy inside the recbole wheel) ----------------------------


def read_recbole_inter(path: Path, scale: Scale | None = None) -> pd.DataFrame:
    """`.inter`: tab-separated with typed header `user_id:token item_id:token rating:float ...`."""
    frame = pd.read_csv(path, sep="\t", dtype=str)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return clean_ratings(frame, str(path), scale=scale)


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
    numbers = [int(y) if y.isdigit() else None for y in years]
    return items_frame(frame["item_id"], titles, genres, numbers)


# --- helpers -------------------------------------------------------------------------------------


def _csv_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [c.strip() for c in next(csv.reader(fh), [])]


def _split_genres(value: object) -> list[str]:
    if not isinstance(value, str) or value.strip() in ("", "(no genres listed)"):
        return []
    return [g for g in value.split("|") if g]


def _first_line(path: Path) -> str:
    with open(path, encoding="latin-1") as fh:
        return fh.readline()


# --- the registry --------------------------------------------------------------------------------

RatingsReader = Callable[[Path, Scale | None], pd.DataFrame]
ItemsReader = Callable[[Path], pd.DataFrame]


@dataclass(frozen=True)
class Format:
    name: str
    is_ratings: Callable[[str], bool]  # given the file's first line
    read_ratings: RatingsReader
    is_items: Callable[[str], bool]
    read_items: ItemsReader


FORMATS: tuple[Format, ...] = (
    Format(
        "RecBole atomic files (.inter, .item)",
        lambda first: first.startswith("user_id:"),
        read_recbole_inter,
        lambda first: first.startswith("item_id:"),
        read_recbole_items,
    ),
    Format(
        "ml-1m (ratings.dat, movies.dat)",
        lambda first: "::" in first,
        read_ml1m_ratings,
        lambda first: "::" in first,
        read_ml1m_items,
    ),
    Format(
        "ml-100k (u.data, u.item)",
        lambda first: "\t" in first and first.split("\t")[0].strip().isdigit(),
        read_ml100k_ratings,
        lambda first: "|" in first,
        read_ml100k_items,
    ),
    Format(
        "MovieLens csv (ratings.csv, movies.csv; a user's own)",
        lambda first: True,  # anything else: its header is checked as ratings.csv's
        read_ratings_csv,
        lambda first: first.startswith("movieId"),
        read_movies_csv,
    ),
)


def read_ratings_file(path: str | Path, scale: Scale | None = None) -> pd.DataFrame:
    """Read ratings from any supported form, recognised by its first line; with `scale`
    (low, high), a rating outside it is refused with its line number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ratings file not found: {path}")
    first = _first_line(path)
    form = next(f for f in FORMATS if f.is_ratings(first))
    return form.read_ratings(path, scale)


def read_items_file(path: str | Path) -> pd.DataFrame:
    """Read item metadata from any supported form, recognised by its first line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"items file not found: {path}")
    first = _first_line(path)
    form = next((f for f in FORMATS if f.is_items(first)), None)
    if form is None:
        raise ValueError(
            f"{path}: not an items file this service reads (movies.csv with header "
            "movieId,title,genres; ml-100k u.item; ml-1m movies.dat; RecBole .item)"
        )
    return form.read_items(path)
