"""Each supported ratings/items form, written small in the test, reads back the same way."""

from __future__ import annotations

import pytest

from training.data.formats import read_items_file, read_ratings_file
from training.data.loaders import load_dataset, load_files


def rows(frame):
    return [tuple(r) for r in frame[["user_id", "item_id", "rating"]].itertuples(index=False)]


def test_ml100k_u_data_and_u_item(tmp_path):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3.5\t891717742\n")
    flags = ["0"] * 19
    flags[5] = flags[8] = "1"  # Comedy, Drama
    line = "|".join(["242", "Kolya (1996)", "24-Jan-1997", "", "http://x", *flags])
    (tmp_path / "u.item").write_bytes(
        (
            line + "\n" + "|".join(["302", "Misérables, Les (1995)", "", "", "", *(["0"] * 19)])
        ).encode("latin-1")
    )
    data = load_files(tmp_path / "u.data", tmp_path / "u.item")
    assert rows(data.ratings) == [("196", "242", 3.0), ("186", "302", 3.5)]
    assert data.ratings["timestamp"].tolist() == [881250949, 891717742]
    records = data.items.astype({"year": object}).to_dict("records")
    assert records == [  # the year is the release date's (None where u.item has none)
        {"item_id": "242", "title": "Kolya (1996)", "genres": ["Comedy", "Drama"], "year": 1997},
        {"item_id": "302", "title": "Misérables, Les (1995)", "genres": [], "year": None},
    ]


def test_ml1m_dat_files_latin1_and_colons_in_titles(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n2::3408::4::978300275\n")
    (tmp_path / "movies.dat").write_bytes(
        "1193::Star Wars: Episode IV (1977)::Action|Sci-Fi\n3408::Amélie (2001)::Comedy\n".encode(
            "latin-1"
        )
    )
    data = load_files(tmp_path / "ratings.dat", tmp_path / "movies.dat")
    assert rows(data.ratings) == [("1", "1193", 5.0), ("2", "3408", 4.0)]
    assert data.items["title"].tolist() == ["Star Wars: Episode IV (1977)", "Amélie (2001)"]
    assert data.items["genres"].tolist() == [["Action", "Sci-Fi"], ["Comedy"]]


def test_ml1m_wrong_field_count_names_the_line(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n2::3408::4\n")
    with pytest.raises(ValueError, match=r"line 2 has 3 '::'-separated fields, expected 4"):
        read_ratings_file(tmp_path / "ratings.dat")


def test_movielens_csv_with_quotes_half_stars_and_no_genres(tmp_path):
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n"
    )
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n31,"Dangerous Minds, The (1995)",Drama\n'
        "1029,Dumbo (1941),(no genres listed)\n"
    )
    data = load_files(tmp_path / "ratings.csv", tmp_path / "movies.csv")
    assert rows(data.ratings) == [("1", "31", 2.5), ("1", "1029", 3.0)]
    assert data.items.to_dict("records") == [
        {"item_id": "31", "title": "Dangerous Minds, The (1995)", "genres": ["Drama"]},
        {"item_id": "1029", "title": "Dumbo (1941)", "genres": []},
    ]


def test_users_own_csv_keeps_string_ids_and_needs_no_timestamp(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("userId,movieId,rating\nalice,tt0111161,5\nbob,0042,4\n")
    frame = read_ratings_file(path)
    assert rows(frame) == [("alice", "tt0111161", 5.0), ("bob", "0042", 4.0)]
    assert "timestamp" not in frame


def test_keras_tutorial_edited_rating_csv(tmp_path):
    path = tmp_path / "edited_rating.csv"
    path.write_text(",userId,movieId,rating,movie_idx\n0,1,2,3.5,0\n1,1,29,3.5,1\n2,7,2,4.0,0\n")
    assert rows(read_ratings_file(path)) == [("1", "2", 3.5), ("1", "29", 3.5), ("7", "2", 4.0)]


def test_recbole_atomic_files(tmp_path):
    (tmp_path / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n"
    )
    (tmp_path / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "242\tKolya\t1996\tComedy\n1\tToy Story\t1995\tAnimation Children's Comedy\n",
        encoding="utf-8",
    )
    data = load_files(tmp_path / "ml-100k.inter", tmp_path / "ml-100k.item")
    assert rows(data.ratings) == [("196", "242", 3.0)]
    assert data.items.to_dict("records")[1] == {
        "item_id": "1",
        "title": "Toy Story (1995)",
        "genres": ["Animation", "Children's", "Comedy"],
        "year": 1995,
    }


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,movie,stars\n1,2,3\n")
    with pytest.raises(ValueError, match=r"lacks \['userId', 'movieId', 'rating'\]"):
        read_ratings_file(path)


def test_non_numeric_rating_is_reported_with_its_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("userId,movieId,rating\n1,2,3\n1,3,five\n")
    with pytest.raises(ValueError, match=r"r.csv: 1 ratings are not numbers \(line 3\)"):
        read_ratings_file(path)


@pytest.mark.parametrize(
    "rows, message",
    [
        ("1,2,3\n1,3,-1\n2,3,inf\n", r"2 ratings are infinite or negative \(lines 3, 4\)"),
        ("1,2,3\n ,3,4\n", r"1 rows have a blank user or item id \(line 3\)"),
        ("1,2,3\n1,,4\n", r"1 rows have a user or item id that is missing \(line 3\)"),
        ("", r"no ratings"),
    ],
)
def test_bad_training_rows_are_refused_with_line_numbers(tmp_path, rows, message):
    path = tmp_path / "r.csv"
    path.write_text("userId,movieId,rating\n" + rows)
    with pytest.raises(ValueError, match=message):
        read_ratings_file(path)


def test_ratings_outside_a_known_scale_are_refused_with_line_numbers(tmp_path):
    from training.data.loaders import load_dataset

    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t2\t3\t0\n1\t3\t50\t0\n2\t3\t0\t0\n")
    with pytest.raises(ValueError, match=r"2 ratings are outside the scale 1-5 \(lines 2, 3\)"):
        load_dataset("ml-100k", tmp_path)  # GroupLens' published scale, checked by default
    own = tmp_path / "own.csv"
    own.write_text("userId,movieId,rating\n1,2,7\n1,3,11\n")
    assert len(read_ratings_file(own)) == 2  # a user's own scale is theirs (1-10 here) ...
    with pytest.raises(ValueError, match=r"1 ratings are outside the scale 1-10 \(line 3\)"):
        read_ratings_file(own, scale=(1, 10))  # ... unless they say what it is


def test_repeated_pairs_keep_the_latest_and_say_how_many(tmp_path, caplog):
    path = tmp_path / "r.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,2,1,300\n1,2,4,500\n2,2,3,1\n1,2,2,100\n")
    with caplog.at_level("WARNING", logger="training.data"):
        frame = read_ratings_file(path)
    assert frame[["user_id", "item_id", "rating"]].values.tolist() == [
        ["1", "2", 4.0],  # the rating with the latest timestamp
        ["2", "2", 3.0],
    ]
    assert "2 repeated (user, item) ratings dropped, the latest of each kept (lines 2, 5)" in (
        caplog.text
    )


def test_ids_spelled_with_spaces_are_one_id_and_their_repeats_drop_too(tmp_path, caplog):
    path = tmp_path / "r.csv"
    # " 1" and "1 " are user 1; "2" and " 2" are item 2; the later rows' timestamps win.
    path.write_text(
        "userId,movieId,rating,timestamp\n 1,2,1,300\n1 , 2,5,900\n3,2,3,1\n1,4,2,100\n"
    )
    with caplog.at_level("WARNING", logger="training.data"):
        frame = read_ratings_file(path)
    assert frame[["user_id", "item_id", "rating"]].values.tolist() == [
        ["1", "2", 5.0],
        ["3", "2", 3.0],
        ["1", "4", 2.0],
    ]
    assert frame.index.tolist() == [0, 1, 2]
    assert "1 repeated (user, item) ratings dropped, the latest of each kept (line 2)" in (
        caplog.text
    )


def test_ml100k_lines_count_without_a_header(tmp_path):
    from training.data.formats import read_ml100k_ratings

    path = tmp_path / "u.data"
    path.write_text("1\t2\t3\t0\n1\t3\tx\t0\n")
    with pytest.raises(ValueError, match=r"\(line 2\)"):
        read_ml100k_ratings(path)


def test_unknown_items_form_is_refused(tmp_path):
    path = tmp_path / "items.txt"
    path.write_text("id;name\n1;x\n")
    with pytest.raises(ValueError, match="not an items file"):
        read_items_file(path)


def test_load_dataset_prefers_grouplens_files_and_says_how_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match="recsys fetch ml-100k"):
        load_dataset("ml-100k", tmp_path)
    root = tmp_path / "ml-100k"
    root.mkdir()
    (root / "ml-100k.inter").write_text("user_id:token\titem_id:token\trating:float\n1\t2\t3\n")
    assert rows(load_dataset("ml-100k", tmp_path).ratings) == [("1", "2", 3.0)]
    (root / "u.data").write_text("9\t8\t5\t0\n")
    assert rows(load_dataset("ml-100k", tmp_path).ratings) == [("9", "8", 5.0)]
