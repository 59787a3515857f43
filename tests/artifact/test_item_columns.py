"""`item_columns.npz` reads back as the lists it was written from, says the same as the
version's `items.json`, and a broken one is refused naming the file and what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from artifact.errors import ArtifactError
from artifact.files import read_item_metadata
from artifact.item_columns import read_item_columns, write_item_columns
from artifact.layout import ITEM_COLUMNS, ITEMS
from artifact.manifest import read_manifest

TITLES = ["Toy Story (1995)", None, "", "Straße (2001)", "naïve \0 x", "東京物語 (1953)"]
GENRES = [["Animation", "Comedy"], [], ["Drama"], ["Comedy", "drama"], [], ["Drama"]]
YEARS = [1995, None, None, 2001, 1900, 1953]


def test_columns_read_back_as_the_lists_they_were_written_from(tmp_path):
    path = tmp_path / ITEM_COLUMNS
    write_item_columns(path, TITLES, GENRES, YEARS)
    titles, genres, years = read_item_columns(path, len(TITLES))
    assert list(titles) == TITLES and list(genres) == GENRES and list(years) == YEARS
    assert titles.containing("STRASSE").tolist() == [3]
    assert titles.containing("物語").tolist() == [5]
    assert genres.rows_by_name()["Drama"].tolist() == [2, 5]


def test_a_catalogue_without_metadata_reads_back_as_empty_rows(tmp_path):
    path = tmp_path / ITEM_COLUMNS
    write_item_columns(path, [None, None], [[], []], [None, None])
    titles, genres, years = read_item_columns(path, 2)
    assert list(titles) == [None, None] and list(genres) == [[], []] and list(years) == [None] * 2


def test_an_exported_version_says_the_same_in_its_columns_as_in_its_json(version_dir):
    assert ITEM_COLUMNS in read_manifest(version_dir).files
    from_json = read_item_metadata(version_dir / ITEMS, 40)
    assert from_json is not None
    titles, genres, years = read_item_columns(version_dir / ITEM_COLUMNS, 40)
    assert list(titles) == list(from_json.titles) and any(titles)
    assert list(genres) == list(from_json.genres) and list(years) == list(from_json.years)


def _arrays(tmp_path) -> dict[str, np.ndarray]:
    path = tmp_path / "good.npz"
    write_item_columns(path, TITLES, GENRES, YEARS)
    with np.load(path) as stored:
        return {key: stored[key] for key in stored.files}


BROKEN = [
    ("title_ends", lambda a: a[:-1], r"title_ends has 5 rows, the id list 6 items"),
    ("years", lambda a: np.zeros(len(a), np.int64), r"years is 1-D int64, expected 1-D float"),
    ("genre_codes", lambda a: a + 50, r"genre_codes run from 50 to 53, but genre_names has 4"),
    ("title_ends", lambda a: a[::-1].copy(), r"title_ends do not rise from 0 to 49 in order"),
    ("genre_ends", lambda a: a - 1, r"genre_ends do not rise from 0 to 6 in order"),
    ("title_text", lambda a: np.append(a, np.uint8(0xFF)), r"title_text is not UTF-8"),
    ("genre_names", lambda a: a.astype(object), r"not a readable .npz of arrays \(.*pickle"),
    (None, None, r"arrays \[.*\], expected \["),
]


@pytest.mark.parametrize(("key", "change", "message"), BROKEN)
def test_broken_columns_are_refused_naming_the_file_and_what_is_wrong(
    tmp_path, key, change, message
):
    arrays = _arrays(tmp_path)
    if key is None:
        del arrays["years"]
    else:
        arrays[key] = change(arrays[key])
    path = tmp_path / ITEM_COLUMNS
    with path.open("wb") as out:
        np.savez(out, **arrays)
    with pytest.raises(ArtifactError, match=rf"{ITEM_COLUMNS}: {message}"):
        read_item_columns(path, len(TITLES))


def test_a_file_that_is_not_an_npz_is_refused(tmp_path):
    path = tmp_path / ITEM_COLUMNS
    path.write_text("hello")
    with pytest.raises(ArtifactError, match=rf"{ITEM_COLUMNS}: not a readable .npz of arrays"):
        read_item_columns(path, 6)
    with pytest.raises(ArtifactError, match=rf"nothing/{ITEM_COLUMNS}: missing"):
        read_item_columns(tmp_path / "nothing" / ITEM_COLUMNS, 6)
