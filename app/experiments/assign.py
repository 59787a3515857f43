"""Which variant a user is in: a hash of (experiment, user) laid on the split, so the answer is
the same on every request, worker and replica, with nothing stored per user; and team-draft
interleaving (Radlinski, Kurup and Joachims, 2008) for experiments that show both variants."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from app.experiments.spec import Experiment


def unit(experiment: str, user_id: str) -> float:
    """A number in [0, 1) fixed by the experiment's name and the user, spread uniformly."""
    digest = hashlib.blake2b(f"{experiment}\0{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def variant_of(experiment: Experiment, user_id: str) -> str:
    """The user's variant of an A/B experiment: shares laid end to end in name order."""
    at = unit(experiment.name, user_id)
    total = 0.0
    names = sorted(experiment.split)
    for name in names:
        total += experiment.split[name]
        if at < total:
            return name
    return names[-1]  # rounding: the split sums to 1 within 1e-6


def team_draft(
    first: Sequence[str], second: Sequence[str], n: int, seed: str
) -> tuple[list[str], list[int]]:
    """Up to `n` items from two rankings and, for each, which ranking placed it (0 or 1): each
    round the team with fewer picks (a coin, seeded by `seed`, when they are even) takes its best
    item not yet taken. An item both rank high is credited to the team that took it first; a
    team that runs out leaves the rest to the other."""
    coin = random.Random(seed)
    lists, at, picks = (first, second), [0, 0], [0, 0]
    taken: set[str] = set()
    merged: list[str] = []
    credit: list[int] = []
    while len(merged) < n:
        team = 0 if picks[0] < picks[1] else 1 if picks[1] < picks[0] else coin.randrange(2)
        for side in (team, 1 - team):
            ranking = lists[side]
            while at[side] < len(ranking) and ranking[at[side]] in taken:
                at[side] += 1
            if at[side] < len(ranking):
                item = ranking[at[side]]
                taken.add(item)
                merged.append(item)
                credit.append(side)
                picks[side] += 1
                break
        else:
            return merged, credit  # both ran out
    return merged, credit
