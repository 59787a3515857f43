"""diversity=0..1 on /recommend: maximal marginal relevance over the best candidates, checked
against a plain re-implementation of the greedy rule on the version's files."""

from __future__ import annotations

import itertools

import numpy as np


def greedy(loaded, row, n, weight):
    """MMR by the book: relevance min-max scaled over the candidates, likeness the largest
    cosine to an item already picked."""
    v = loaded.vectors
    scores = np.asarray(v.item_factors, np.float64) @ np.asarray(v.user_factors[row], np.float64)
    scores += np.asarray(v.item_bias, np.float64)
    unseen = [r for r in np.argsort(-scores, kind="stable") if r not in set(loaded.seen.of(row))]
    cands = unseen[:50]
    rel = scores[cands]
    rel = (rel - rel.min()) / (rel.max() - rel.min())
    unit = np.asarray(v.item_factors, np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    picked = [0]
    while len(picked) < n:
        gains = {
            c: (1 - weight) * rel[c] - weight * max(unit[cands[c]] @ unit[cands[p]] for p in picked)
            for c in range(len(cands))
            if c not in picked
        }
        picked.append(max(gains, key=lambda c: (gains[c], -c)))
    return [loaded.item_ids[cands[c]] for c in picked], unit


def likeness(unit, loaded, ids):
    rows = [loaded.item_index[i] for i in ids]
    return np.mean([unit[a] @ unit[b] for a, b in itertools.combinations(rows, 2)])


def test_mmr_picks_what_the_greedy_rule_picks_and_lists_grow_less_alike(served):
    client, loaded = served
    user = list(loaded.user_index)[4]
    row = loaded.user_index[user]
    plain = client.get(f"/recommend/{user}", params={"n": 6}).json()["items"]
    same = client.get(f"/recommend/{user}", params={"n": 6, "diversity": 0}).json()["items"]
    assert same == plain
    alike = []
    for weight in (0.3, 0.9):
        body = client.get(f"/recommend/{user}", params={"n": 6, "diversity": weight}).json()
        want, unit = greedy(loaded, row, 6, weight)
        assert [i["item_id"] for i in body["items"]] == want
        assert body["items"][0] == plain[0]  # the best item always leads
        alike.append(likeness(unit, loaded, want))
    assert alike[1] < alike[0] < likeness(unit, loaded, [i["item_id"] for i in plain])
    scored = {i["item_id"]: i["score"] for i in body["items"]}
    full = client.get(f"/recommend/{user}", params={"n": 40}).json()["items"]
    assert all(scored[i["item_id"]] == i["score"] for i in full if i["item_id"] in scored)


def test_the_batch_route_diversifies_as_the_single_one_does(served):
    client, loaded = served
    users = list(loaded.user_index)[:3] + ["someone-new"]
    batch = client.post("/recommend", json={"user_ids": users, "n": 5, "diversity": 0.6}).json()
    for user, got in zip(users, batch["results"], strict=True):
        one = client.get(f"/recommend/{user}", params={"n": 5, "diversity": 0.6}).json()
        assert got["items"] == one["items"]


def test_diversity_outside_0_to_1_is_a_422(served):
    client, loaded = served
    user = list(loaded.user_index)[0]
    assert client.get(f"/recommend/{user}", params={"diversity": 1.5}).status_code == 422
    bad = client.post("/recommend", json={"user_ids": [user], "diversity": -0.1})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "diversity"]
