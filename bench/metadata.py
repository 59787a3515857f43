"""A million items' metadata held in arrays (`artifact.metadata`) against the Python lists the
loader held before, in one run: the resident memory each adds to a process once loaded, the
peak while loading, the load time, and one title search; and, for scale, what the item id
list and its id -> row dict (still Python objects) add.

Writes an `items.json` as the export writes it (title "Movie i (year)", one to three genres of
MovieLens's 18, the year) and loads it in a fresh process per representation, so neither sees
the other's heap.

    PYTHONPATH=. .venv/bin/python bench/metadata.py [--items 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

GENRES = (
    "Action Adventure Animation Children Comedy Crime Documentary Drama Fantasy Film-Noir "
    "Horror Musical Mystery Romance Sci-Fi Thriller War Western"
).split()

CHILD = r"""
import gc, json, sys, time
from pathlib import Path

def rss_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024

mode, path, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
from artifact.files import read_item_metadata, read_json, title_year
gc.collect()
before = rss_mb("VmRSS")
started = time.perf_counter()
if mode == "lists":  # the representation the loader held before artifact.metadata
    rows = read_json(path)
    titles = [r.get("title") for r in rows]
    years = [r["year"] if isinstance(r.get("year"), int) else title_year(t)
             for r, t in zip(rows, titles)]
    genres = [list(r.get("genres") or []) for r in rows]
    del rows
elif mode == "ids":  # for scale: the loader's id list and id -> row dict, still objects
    ids = [str(i + 1) for i in range(n)]
    index = {item: row for row, item in enumerate(ids)}
else:
    titles, genres, years = read_item_metadata(path, n)
load = time.perf_counter() - started
gc.collect()
after = rss_mb("VmRSS")
wanted = "movie 12345 ("
started = time.perf_counter()
if mode == "ids":
    found = [index["12345"]]
elif mode == "lists":
    found = [r for r, t in enumerate(titles) if t and wanted in t.casefold()]
else:
    titles.containing(wanted)  # the first search folds the titles once
    started = time.perf_counter()
    found = titles.containing(wanted).tolist()
search = time.perf_counter() - started
print(json.dumps({"mode": mode, "load_s": round(load, 2), "rss_added_mb": round(after - before),
                  "peak_mb": round(rss_mb("VmHWM")), "search_ms": round(search * 1e3, 1),
                  "found": len(found), "after_search_mb": round(rss_mb("VmRSS") - before)}))
"""


def write_items(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 4, n)
    codes = rng.integers(0, len(GENRES), counts.sum())
    ends = np.cumsum(counts)
    rows = []
    for i in range(n):
        year = 1950 + i % 70
        genres = [GENRES[c] for c in codes[ends[i] - counts[i] : ends[i]]]
        rows.append({"title": f"Movie {i + 1} ({year})", "genres": genres, "year": year})
    path.write_text(json.dumps(rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.json"
        write_items(path, args.items)
        print(f"items.json: {args.items:,} items, {path.stat().st_size / 2**20:.0f} MB")
        for mode in ("lists", "arrays", "ids"):
            child = [sys.executable, "-c", CHILD, mode, str(path), str(args.items)]
            print(subprocess.run(child, check=True, capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
