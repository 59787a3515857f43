"""The integer fast read of ratings.csv gives the text read's frame, or steps aside."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data import formats, integer_ids
from training.data.formats import read_ratings_file

HEADER = "userId,movieId,rating,timestamp\n"


def _rows(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    users = np.sort(rng.integers(0, 400, n))
    items = rng.integers(0, 3000, n)
    stars = rng.choice(["0.5", "1", "3.5", "4.0", "5"], n)
    return [
        f"{u},{i},{s},{1_000 + k}"
        for k, (u, i, s) in enumerate(zip(users, items, stars, strict=True))
    ]


def _text_read(path, monkeypatch) -> pd.DataFrame:
    with monkeypatch.context() as patched:
        patched.setattr(formats, "read_integer_ids", lambda *args: None)
        return read_ratings_file(path)


def _took_fast_path(path) -> bool:
    header = formats._csv_header(path)
    return integer_ids.read_integer_ids(path, header, header) is not None


@pytest.mark.parametrize(
    "name, body, fast",
    [
        ("plain, with repeats", "\n".join(_rows(3000)) + "\n", True),
        ("no newline at the end", "\n".join(_rows(50)), True),
        ("windows line ends", "\r\n".join(_rows(50)) + "\r\n", True),
        (
            "ascending, no repeats",
            "\n".join(f"{u},{i},4,1" for u in range(40) for i in range(30)),
            True,
        ),
        # Past the 1,000 lines the fast read peeks at: only the byte check can see these.
        ("a leading zero late", "\n".join(_rows(1500) + ["007,12,4,1", "8,012,3,2"]), False),
        ("a padded id late", "\n".join(_rows(1500) + [" 7,12,4,1", "8,12 ,3,2"]), False),
        ("a signed id late", "\n".join(_rows(1500) + ["+7,12,4,1"]), False),
        ("a text id late", "\n".join(_rows(1500) + ["u7,12,4,1"]), False),
        ("a blank line late", "\n".join(_rows(1500) + ["", "8,12,3,2"]), False),
        ("a quoted id late", "\n".join(_rows(1500) + ['"8",12,3,2']), False),
    ],
)
def test_the_fast_read_equals_the_text_read_and_is_taken_only_for_plain_ids(
    tmp_path, monkeypatch, name, body, fast
):
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + body, newline="")
    frame = read_ratings_file(path)
    pd.testing.assert_frame_equal(frame, _text_read(path, monkeypatch))
    assert _took_fast_path(path) is fast
    assert frame["user_id"].map(type).eq(str).all()


def test_a_leading_zero_stays_as_the_file_spells_it(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + "\n".join(_rows(1200) + ["007,12,4,1"]) + "\n")
    assert read_ratings_file(path)["user_id"].iloc[-1] == "007"


def test_repeats_in_an_integer_file_keep_the_latest_and_name_the_lines(tmp_path, caplog):
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + "1,2,1,300\n1,2,4,500\n2,2,3,1\n1,2,2,100\n")
    with caplog.at_level("WARNING", logger="training.data"):
        frame = read_ratings_file(path)
    assert frame[["user_id", "item_id", "rating"]].values.tolist() == [
        ["1", "2", 4.0],
        ["2", "2", 3.0],
    ]
    assert "2 repeated (user, item) ratings dropped, the latest of each kept (lines 2, 5)" in (
        caplog.text
    )


def test_digits_counts_every_width_an_int64_has():
    values = np.array(
        [0, 1, 9, 10, 99, 100, 999_999, 1_000_000, 10**17, 10**18 - 1, 10**18, 2**63 - 1]
    )
    assert integer_ids.digits(values).tolist() == [len(str(int(v))) for v in values]
