"""The hash split and team-draft interleaving, against their definitions."""

from __future__ import annotations

import pytest

from app.experiments.assign import team_draft, unit, variant_of
from app.experiments.spec import Experiment


def test_the_split_is_a_pure_function_of_experiment_and_user_and_follows_the_shares():
    ab = Experiment(
        "exp", "ab", {"control": 1, "treatment": 2}, {"control": 0.8, "treatment": 0.2}, 0
    )
    users = [f"user-{k}" for k in range(20_000)]
    first = [variant_of(ab, u) for u in users]
    assert first == [variant_of(ab, u) for u in users]  # every call, every process
    share = first.count("treatment") / len(users)
    assert abs(share - 0.2) < 0.01  # 20,000 draws: sd 0.0028
    other = Experiment("other", "ab", ab.variants, ab.split, 0)
    moved = sum(variant_of(other, u) != v for u, v in zip(users, first, strict=True))
    assert moved > 2_000  # another experiment draws users afresh
    assert 0 <= unit("exp", "user-1") < 1


def test_team_draft_takes_turns_credits_each_pick_and_never_repeats():
    a = ["1", "2", "3", "4", "5"]
    b = ["2", "6", "1", "7", "8"]
    merged, credit = team_draft(a, b, 6, "seed-x")
    assert len(merged) == 6 and len(set(merged)) == 6
    for item, side in zip(merged, credit, strict=True):
        assert item in (a, b)[side]
    assert abs(credit.count(0) - credit.count(1)) <= 1  # turns: neither team gets ahead by 2
    # Each team takes its best item not taken: its picks keep its own order.
    for side, ranking in ((0, a), (1, b)):
        picked = [m for m, c in zip(merged, credit, strict=True) if c == side]
        assert picked == sorted(picked, key=ranking.index)


def test_team_draft_when_one_list_runs_out_and_its_coin_is_the_seed():
    merged, credit = team_draft(["1"], ["2", "3", "4"], 4, "s")
    assert sorted(merged) == ["1", "2", "3", "4"] and credit.count(0) == 1
    assert team_draft(["1", "2"], ["3", "4"], 4, "same") == team_draft(
        ["1", "2"], ["3", "4"], 4, "same"
    )
    assert team_draft([], [], 3, "s") == ([], [])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_the_first_pick_is_a_fair_coin(n):
    firsts = [team_draft(["a"], ["b"], n, f"seed-{k}")[1][0] for k in range(2000)]
    assert abs(firsts.count(0) / 2000 - 0.5) < 0.05
