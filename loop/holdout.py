"""Which of the ratings the served version never learned are held out to judge on: the newest
`fraction` of them (by log order, which is arrival order), at least one per active user where
possible (a user with two or more new ratings gives their newest), as the service has them
(the latest rating of each user and item)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Holdout:
    ids: frozenset[int]  # log ids held out (left out of the candidate's training), every rating
    # of a held-out user and item among the new ones
    ratings: pd.DataFrame  # user_id, item_id, rating of those
    unlearned: int  # ratings the served version never learned (after the latest per pair)

    @property
    def users(self) -> int:
        return int(self.ratings["user_id"].nunique()) if len(self.ratings) else 0


def choose(rows: Iterable[dict[str, Any]], fraction: float) -> Holdout:
    """The holdout among `rows` (the store's rating rows after the served version's `through`,
    in id order)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    every: dict[tuple[str, str], list[int]] = {}  # a held-out pair's earlier ratings go too
    for row in rows:
        key = (row["user_id"], row["item_id"])
        every.setdefault(key, []).append(row["id"])
        old = latest.get(key)
        if old is None or (row["ts"], row["id"]) > (old["ts"], old["id"]):
            latest[key] = row
    events = sorted(latest.values(), key=lambda r: r["id"])
    target = round(fraction * len(events))
    by_user: dict[str, list[dict[str, Any]]] = {}
    for row in events:
        by_user.setdefault(row["user_id"], []).append(row)
    chosen = {mine[-1]["id"] for mine in by_user.values() if len(mine) >= 2}
    for row in reversed(events):
        if len(chosen) >= target:
            break
        chosen.add(row["id"])
    held = [r for r in events if r["id"] in chosen]
    frame = pd.DataFrame(
        [(r["user_id"], r["item_id"], float(r["rating"])) for r in held],
        columns=["user_id", "item_id", "rating"],
    )
    ids = {i for r in held for i in every[(r["user_id"], r["item_id"])]}
    return Holdout(frozenset(ids), frame, len(events))
