"""Similar items on ml-100k: which neighbours find what a user liked next.

Protocol: the diversity benchmark's split and version (ratings cut at random, seed 42, 80%
fitted on, 20% test; the default `recsys train` on the 80%). For each test user with a liked
test rating (>= 4), up to three of their highest-rated training items are each a query; its 10
neighbours (the query's own and the user's other training items left out) are scored by
recall: the share of the user's liked test items among them (out of at most 10). Side by side,
each neighbour measure on the same queries: the item-item weights' row (what /similar serves
when the version has them), the cosine between the retrieval vectors (what it serves
otherwise), and the cosine between the rating model's item factors.

    PYTHONPATH=. .venv/bin/python bench/similar.py [--data-dir data] [--work-dir DIR]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.diversity import held_out  # noqa: E402

QUERIES_PER_USER = 3
TOP = 10


def unit(matrix) -> np.ndarray:
    m = np.asarray(matrix, np.float64)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def main() -> None:
    split, loaded, _ = held_out(__doc__.splitlines()[0])
    if loaded.item_item is None:
        raise SystemExit(f"{loaded.path} has no item-item weights (trained before they existed?)")
    index = loaded.item_index
    liked: dict[str, set[int]] = {}
    test = split.test[split.test["rating"] >= 4]
    for user, item in zip(test["user_id"], test["item_id"], strict=True):
        if user in loaded.user_index and item in index:
            liked.setdefault(user, set()).add(index[item])
    retrieval, rating = unit(loaded.vectors.item_factors), unit(loaded.rating_vectors.item_factors)
    weights = loaded.item_item
    measures = {
        "item-item weights (row of B)": lambda q: np.array(weights[q], np.float64),
        "cosine, retrieval vectors": lambda q: retrieval @ retrieval[q],
        "cosine, rating model's factors": lambda q: rating @ rating[q],
    }
    recall: dict[str, list[float]] = {name: [] for name in measures}
    rng = np.random.default_rng(0)
    for user, mine in split.train.groupby("user_id"):
        if user not in liked:
            continue
        best = mine[mine["rating"] == mine["rating"].max()]["item_id"].tolist()
        seen = [index[i] for i in mine["item_id"]]
        for query in rng.choice(best, min(QUERIES_PER_USER, len(best)), replace=False):
            for name, measure in measures.items():
                scores = measure(index[query])
                scores[seen] = -np.inf
                found = set(np.argsort(-scores)[:TOP].tolist()) & liked[user]
                recall[name].append(len(found) / min(TOP, len(liked[user])))
    print(f"{len(next(iter(recall.values()))):,} queries from {len(liked):,} test users")
    print("| neighbours by | recall@10 |")
    print("|---|---|")
    for name, values in recall.items():
        print(f"| {name} | {np.mean(values):.4f} |")
    star_wars = index.get("50")
    if star_wars is not None and loaded.titles:
        scores = measures["item-item weights (row of B)"](star_wars)
        scores[star_wars] = -np.inf
        print("Star Wars (1977):", "; ".join(loaded.titles[r] for r in np.argsort(-scores)[:10]))


if __name__ == "__main__":
    main()
