"""Item metadata in arrays reads back exactly as the lists it replaces, and its title search and
genre rows equal the plain loops over those lists."""

from __future__ import annotations

import numpy as np
import pytest

from artifact.metadata import Genres, Titles, Years

TITLES = ["Toy Story (1995)", None, "", "Straße (2001)", "STRASSE", "naïve \0 x", "Heat (1995)"]
GENRES = [["Animation", "Comedy"], [], ["Drama"], ["Comedy", "drama"], [], ["Drama"], ["Crime"]]
YEARS = [1995, None, None, 2001, None, 1900, 1995]


def test_each_column_reads_back_as_its_list():
    titles, genres, years = Titles(TITLES), Genres(GENRES), Years(YEARS)
    assert list(titles) == TITLES and list(genres) == GENRES and list(years) == YEARS
    assert (len(titles), len(genres), len(years)) == (7, 7, 7)
    assert titles[-1] == "Heat (1995)" and titles[1:4] == TITLES[1:4] and years[:2] == [1995, None]
    assert genres[3] == ["Comedy", "drama"] and isinstance(years[0], int)
    with pytest.raises(IndexError, match="row 7 of 7"):
        titles[7]
    assert not Titles([]) and list(Genres([])) == [] and len(Years([])) == 0


@pytest.mark.parametrize("text", ["", "story", "STRASSE", "straße", "(1995)", "\0", "e \0", "zz"])
def test_title_search_equals_the_loop_over_the_list(text):
    wanted = text.casefold()
    loop = [r for r, t in enumerate(TITLES) if t and wanted in t.casefold()]
    assert Titles(TITLES).containing(text).tolist() == loop


def test_title_search_on_many_titles_equals_the_loop():
    rng = np.random.default_rng(0)
    words = ["Love", "love", "War", "Ünïcode", "the", "Ǆ", "ß"]
    titles = [" ".join(rng.choice(words, rng.integers(0, 4))) for _ in range(2_000)]
    index = Titles(titles)
    for text in ["love", "the war", "ǆ", "ss", "ünï", "e l"]:
        wanted = text.casefold()
        assert index.containing(text).tolist() == [
            r for r, t in enumerate(titles) if t and wanted in t.casefold()
        ]


def test_genre_rows_equal_the_loop_over_the_lists():
    rows = Genres(GENRES).rows_by_name()
    assert list(rows) == ["Animation", "Comedy", "Drama", "drama", "Crime"]
    for name, found in rows.items():
        assert found.tolist() == [r for r, g in enumerate(GENRES) if name in g]
    assert Genres([[]]).rows_by_name() == {}


def test_unknown_years_are_nan_in_the_column():
    values = Years(YEARS).values
    assert np.isnan(values[[1, 2, 4]]).all() and values[[0, 3, 5, 6]].tolist() == [
        1995,
        2001,
        1900,
        1995,
    ]
