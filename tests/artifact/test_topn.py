"""The one top-N kernel against a full sort, for one query and for blocks."""

from __future__ import annotations

import numpy as np
import pytest

from artifact.topn import score, top_n, top_n_block


def reference(scores: np.ndarray, n: int, exclude=(), allowed=None) -> list[int]:
    """Full sort: higher score first, equal scores by ascending row, never an excluded row."""
    rows = [
        r for r in range(len(scores)) if r not in set(exclude) and (allowed is None or allowed[r])
    ]
    return sorted(rows, key=lambda r: (-scores[r], r))[:n]


@pytest.fixture
def tied() -> np.ndarray:
    # Many exact ties, the case where argpartition's own order would leak into the answer.
    return np.random.default_rng(0).integers(0, 5, 200).astype(np.float32)


@pytest.mark.parametrize("n", [1, 7, 50, 200, 500])
def test_one_query_equals_a_full_sort_with_ties_in_row_order(tied, n):
    exclude = np.array([3, 17, 17, 150])  # repeats are harmless
    allowed = np.arange(200) % 3 != 0
    rows, scores = top_n(tied.copy(), n, exclude, allowed)
    expected = reference(tied, n, exclude.tolist(), allowed)
    assert rows.tolist() == expected
    assert scores.tolist() == tied[expected].tolist()


def test_fewer_eligible_items_than_n_come_back_short_never_padded(tied):
    allowed = np.zeros(200, bool)
    allowed[[5, 9]] = True
    rows, _ = top_n(tied.copy(), 10, np.array([9]), allowed)
    assert rows.tolist() == [5]
    assert top_n(tied.copy(), 0)[0].tolist() == []


def test_a_block_equals_one_query_at_a_time():
    rng = np.random.default_rng(1)
    users, items = rng.normal(size=(9, 4)).astype(np.float32), rng.normal(size=(30, 4))
    items = items.astype(np.float32)
    bias = rng.normal(size=30).astype(np.float32)
    exclude = [rng.choice(30, size=int(k), replace=False) for k in rng.integers(0, 29, 9)]
    exclude[2] = np.arange(30)  # everything seen: nothing to recommend
    allowed = rng.random(30) > 0.2
    block = top_n_block(score(users, items, bias), 8, exclude, allowed)
    for u in range(9):
        rows, scores = top_n(score(users[u], items, bias), 8, exclude[u], allowed)
        assert block[u][0].tolist() == rows.tolist()
        np.testing.assert_allclose(block[u][1], scores, rtol=1e-6)
    assert block[2][0].tolist() == []


def test_score_is_the_dot_product_plus_item_bias():
    p = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    q = np.array([[1.0, 1.0], [3.0, 0.0], [0.0, 1.0]], np.float32)
    bias = np.array([0.5, 0.0, -1.0], np.float32)
    assert score(p, q, bias).tolist() == [[1.5, 3.0, -1.0], [2.5, 0.0, 1.0]]
    assert score(p[1], q, None).tolist() == [2.0, 0.0, 2.0]


def test_a_block_needs_one_exclusion_list_per_query():
    with pytest.raises(ValueError, match="3 queries but 2 exclusion lists"):
        top_n_block(np.zeros((3, 4)), 2, [np.array([0]), np.array([1])])


def test_a_block_settles_ties_at_the_cut_by_row_like_one_query(tied):
    block = np.stack([tied, tied[::-1].copy(), np.full(200, 2.0, np.float32)])
    exclude = [np.array([0, 1]), np.array([], np.int64), np.array([4])]
    ranked = top_n_block(block.copy(), 25, exclude)
    for q in range(3):
        assert ranked[q][0].tolist() == reference(block[q], 25, exclude[q].tolist())


@pytest.mark.parametrize("n", [1, 10, 100, 300])
def test_a_large_catalogue_selects_through_a_sampled_threshold_with_the_same_answers(n):
    rng = np.random.default_rng(n)
    # 20,000 items, ties everywhere (50 distinct scores), a sixth of them excluded, in patterns
    # that make a strided sample unrepresentative: the best scores all at rows the sample skips.
    scores = rng.integers(0, 50, 20_000).astype(np.float32)
    scores[1::16] += 100  # every 16th row from 1 beats the rest, and no sample point is there
    exclude = rng.choice(20_000, 3_000, replace=False)
    allowed = np.arange(20_000) % 7 != 0
    rows, top = top_n(scores.copy(), n, exclude, allowed)
    expected = reference(scores, n, exclude.tolist(), allowed)
    assert rows.tolist() == expected and top.tolist() == scores[expected].tolist()
    plain = rng.normal(size=20_000).astype(np.float32)
    assert top_n(plain.copy(), n)[0].tolist() == reference(plain, n)
    # The sample is the best rows: too few pass its threshold, and the full selection answers.
    sampled = rng.normal(size=20_000).astype(np.float32)
    sampled[::16] += 100
    assert top_n(sampled.copy(), n)[0].tolist() == reference(sampled, n)
    # A block over such a catalogue takes the same path row by row: the same answers.
    block = np.stack([scores, plain, sampled])
    exclusions = [exclude, np.array([], np.int64), exclude[:10]]
    ranked = top_n_block(block.copy(), n, exclusions, allowed)
    for q in range(3):
        expected = reference(block[q], n, exclusions[q].tolist(), allowed)
        assert ranked[q][0].tolist() == expected
        assert ranked[q][1].tolist() == block[q][expected].tolist()
