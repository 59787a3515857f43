"""The fast read of a ratings.csv whose ids are plain integers, as in every MovieLens release.

pandas' C parser builds one Python string per id when it reads ids as text: at 20M ratings that
was ~5 s of the parse and ~5 s more to factorise the 40M strings. Read as int64 the same columns
parse in ~1.8 s, factorise in ~0.6 s, and each distinct id is spelled once.

Ids must still come back exactly as the file spells them, so the fast path is taken only when the
file proves that every id is spelled as `str(int(id))`: no leading zero, sign or blank. A field
that parses to v and is as long as str(v) is str(v), so it is enough to find, from each line's
start, the comma where str(user) and str(item) would end. Anything else (other column orders,
quoted or padded ids, blank lines, non-integer ids) returns None and takes the text path, which
reads every spelling and strips it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

ID_COLUMNS = ["userId", "movieId"]
_PLAIN = re.compile(rb"(0|[1-9][0-9]{0,17}),(0|[1-9][0-9]{0,17}),")
_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)  # 10 .. 1e18
_PEEK_LINES = 1000


def read_integer_ids(path: Path, header: list[str], columns: list[str]) -> pd.DataFrame | None:
    """`columns` of the csv with int64 ids, or None when any id is not spelled plainly."""
    if header[:2] != ID_COLUMNS or not _head_is_plain(path):
        return None
    try:
        frame = pd.read_csv(path, usecols=columns, dtype=dict.fromkeys(ID_COLUMNS, np.int64))
    except (ValueError, OverflowError):  # a blank, text or out-of-range id somewhere
        return None
    users = frame["userId"].to_numpy()
    items = frame["movieId"].to_numpy()
    if len(frame) == 0 or min(users.min(), items.min()) < 0:
        return None
    # The file is read a second time for the check: parsing bytes already read (io.BytesIO)
    # took 3.9 s at 20M ratings against 1.9-2.3 s for both reads from the page cache.
    return frame if spelled_plainly(np.fromfile(path, dtype=np.uint8), users, items) else None


def spelled_plainly(data: np.ndarray, users: np.ndarray, items: np.ndarray) -> bool:
    """Whether the bytes of a csv (a header line, then one line per row) start every row with
    `str(user),str(item),`."""
    ends = np.flatnonzero(data == ord("\n"))
    if not len(ends):
        return False
    starts = ends + 1
    starts = starts[starts < len(data)]  # the last line, when the file ends with a newline
    if len(starts) != len(users):  # blank or quoted multi-line rows: the text path counts them
        return False
    user_end = starts + digits(users)
    item_end = user_end + 1 + digits(items)
    last = len(data) - 1
    return bool(
        (data[np.minimum(user_end, last)] == ord(",")).all()
        and (data[np.minimum(item_end, last)] == ord(",")).all()
    )


def digits(values: np.ndarray) -> np.ndarray:
    """How many decimal digits each non-negative integer has (0 has one)."""
    return np.searchsorted(_POWERS, values, side="right") + 1


def _head_is_plain(path: Path) -> bool:
    """The first lines decide whether the full parse is worth trying."""
    with open(path, "rb") as fh:
        fh.readline()
        lines = [fh.readline() for _ in range(_PEEK_LINES)]
    lines = [line for line in lines if line]
    return bool(lines) and all(_PLAIN.match(line) for line in lines)
