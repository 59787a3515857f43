"""The item-item half of a trained user's blend, kept: x_u B and its moments depend only on the
ratings the version learned, so for a user with no live ratings they are the same on every
request until the version changes (bench/README.md, "The plain measurement": the gather of the
user's rated rows and the product are 58 of the 175 us one ml-100k /recommend takes in
process). One cache per loaded version, least recently used out first, within
`RECSYS_BLEND_CACHE_MB` (0: off). A user with live ratings is never served from it; the values
kept are the ones the computation returns, so answers are the same bytes either way."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

import numpy as np

BlendEntry = tuple[np.ndarray, float, float]  # x_u B (read-only), its mean, its standard deviation
# In the ranker's cache (`LoadedVersion.trained_ranks`): the candidate rows, the ranker's scores.
RankEntry = tuple[np.ndarray, np.ndarray]
Entry = TypeVar("Entry", BlendEntry, RankEntry)


class TrainedBlends(Generic[Entry]):
    budget_bytes = 64 * 2**20  # set once at start-up from RECSYS_BLEND_CACHE_MB

    def __init__(self) -> None:
        self.entries: OrderedDict[int, Entry] = OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()  # requests and the batch path may share a version

    def get(self, row: int) -> Entry | None:
        with self.lock:
            found = self.entries.get(row)
            if found is not None:
                self.entries.move_to_end(row)
            return found

    def put(self, row: int, entry: Entry) -> None:
        size = _size(entry)
        if size > self.budget_bytes:
            return
        for part in entry:
            if isinstance(part, np.ndarray):
                part.setflags(write=False)  # shared by every later answer for this user
        with self.lock:
            if row in self.entries:
                return
            self.entries[row] = entry
            self.bytes += size
            while self.bytes > self.budget_bytes:
                _, old = self.entries.popitem(last=False)
                self.bytes -= _size(old)


def _size(entry: BlendEntry | RankEntry) -> int:
    return sum(part.nbytes for part in entry if isinstance(part, np.ndarray))
