"""Diversity on ml-100k: what `diversity=` on /recommend trades, in one table.

Protocol (the retrieval benchmark's split): ratings cut at random (seed 42) into 80% fitted on
and 20% test; the default version is trained on the 80% (`recsys train` with no test split:
its own validation cut chooses the epochs, then it refits on all of them). Each test user with
a relevant test rating (>= 4) gets the service's own `recommend` (the function GET /recommend
calls, on the loaded version) at diversity 0, 0.3, 0.6 and 0.9, and the lists are scored:
- NDCG@10 against the relevant test ratings;
- intra-list diversity: the mean over pairs in a list of 1 - cosine between the retrieval item
  vectors (what MMR pushes on), and of 1 - Jaccard between the items' genre sets (what a person
  would call diverse, and nothing MMR sees);
- catalogue coverage: the share of items in anyone's top 10;
- the cost: mean milliseconds per call, and its ratio to diversity 0 in the same run.

    PYTHONPATH=. .venv/bin/python bench/diversity.py [--data-dir data] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from app.events.view import VersionView  # noqa: E402
from app.ranking.recommend import recommend  # noqa: E402
from app.serving.loader import LoadedVersion, load_version  # noqa: E402
from bench.coldstart import RELEVANT_FROM, SEED, TOP, ndcg, train  # noqa: E402
from training.data.loaders import load_dataset  # noqa: E402
from training.data.split import Split, split_ratings  # noqa: E402

WEIGHTS = (0.0, 0.3, 0.6, 0.9)
# The default version trained on the 80% (shared with bench/calibration.py in one --work-dir).
HELD_OUT_MODEL = "heldout-80"


def pairwise_distance(rows: np.ndarray, unit: np.ndarray, genres: list[set[str]]) -> tuple:
    pairs = list(itertools.combinations(rows.tolist(), 2))
    if not pairs:
        return float("nan"), float("nan")
    cosine = np.mean([1 - float(unit[a] @ unit[b]) for a, b in pairs])
    jaccard = np.mean(
        [1 - len(genres[a] & genres[b]) / max(len(genres[a] | genres[b]), 1) for a, b in pairs]
    )
    return float(cosine), float(jaccard)


def held_out(description: str) -> tuple[Split, LoadedVersion, VersionView]:
    """The command line's data, its 80/20 split, and the default version trained on the 80%
    (reused from --work-dir when there), loaded with an empty live state."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-heldout-"))
    data = load_dataset("ml-100k", args.data_dir)
    split = split_ratings(data.ratings, validation=0.0, test=0.2, seed=SEED)
    loaded = load_version(train(split.train, data.items, work, HELD_OUT_MODEL))
    return split, loaded, VersionView.empty(loaded)


def main() -> None:
    split, loaded, live = held_out(__doc__.splitlines()[0])
    relevant: dict[str, set[int]] = {}
    for user, item, rating in split.test[["user_id", "item_id", "rating"]].itertuples(False):
        if rating >= RELEVANT_FROM and user in loaded.user_index and item in loaded.item_index:
            relevant.setdefault(user, set()).add(loaded.item_index[item])
    users = sorted(relevant)
    unit = loaded.unit_rows(np.arange(loaded.n_items))
    genres = [set(g) for g in (loaded.genres or [[]] * loaded.n_items)]
    print(f"{len(users)} test users, {loaded.n_items} items; version at {loaded.path}")
    print("| diversity | NDCG@10 | ILD (vectors) | ILD (genres) | coverage@10 | ms/call | ratio |")
    print("|---|---|---|---|---|---|---|")
    base_ms = None
    with threadpool_limits(1):
        for weight in WEIGHTS:
            scores, vector_ild, genre_ild, shown = [], [], [], set()
            started = time.perf_counter()
            lists = [recommend(live.user(u), TOP, diversity=weight).rows for u in users]
            ms = (time.perf_counter() - started) * 1000 / len(users)
            base_ms = base_ms or ms
            for user, rows in zip(users, lists, strict=True):
                scores.append(ndcg(rows, np.array(sorted(relevant[user]))))
                v, g = pairwise_distance(rows, unit, genres)
                vector_ild.append(v)
                genre_ild.append(g)
                shown.update(rows.tolist())
            print(
                f"| {weight:.1f} | {np.mean(scores):.4f} | {np.mean(vector_ild):.3f} | "
                f"{np.mean(genre_ild):.3f} | {len(shown) / loaded.n_items:.3f} | {ms:.3f} | "
                f"{ms / base_ms:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
