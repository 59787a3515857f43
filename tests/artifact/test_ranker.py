"""The ranker's shared pieces (artifact.ranker): candidates, features and scores against
reference computations written out item by item here, and the reordering."""

from __future__ import annotations

import numpy as np
import pytest

from artifact.ranker import FEATURES, RankerWeights, candidates, item_table, reranked

GENRES = ["Comedy", "Drama", "Horror"]


def weights(width: int = 5, seed: int = 0) -> RankerWeights:
    rng = np.random.default_rng(seed)
    table = item_table(
        counts=np.array([0, 3, 10, 1, 7, 2]),
        years=np.array([1990, np.nan, 1970, 2001, 1995, np.nan]),
        genre_sets=[
            ["Comedy"],
            ["Drama", "Horror"],
            [],
            ["Comedy", "Drama"],
            ["Western"],
            ["Horror"],
        ],
        vocabulary=GENRES,
    )
    f = len(FEATURES)
    return RankerWeights(
        table,
        rng.normal(size=f).astype(np.float32),
        rng.uniform(0.5, 2, size=f).astype(np.float32),
        rng.normal(size=(f + 1, width)).astype(np.float32),
        rng.normal(size=width + 1).astype(np.float32),
        per_source=2,
    )


def test_the_item_table_is_log_raters_the_year_or_the_mean_and_genre_indicators():
    table = weights().items
    assert table[:, 0] == pytest.approx(np.log1p([0, 3, 10, 1, 7, 2]))
    mean_year = np.mean([1990, 1970, 2001, 1995])
    assert table[:, 1] == pytest.approx([1990, mean_year, 1970, 2001, 1995, mean_year])
    assert table[:, 2:].tolist() == [
        [1, 0, 0],
        [0, 1, 1],
        [0, 0, 0],
        [1, 1, 0],
        [0, 0, 0],
        [0, 0, 1],  # Western: none
    ]


def test_features_equal_a_reference_computed_item_by_item():
    w = weights()
    rows = np.array([0, 2, 5])
    z_vec, z_ii, rating = np.array([0.5, -1, 2.0]), np.array([1.5, 0, -0.25]), np.array([4, 3, 2.5])
    rated, stars = np.array([1, 3, 4]), np.array([5.0, 2.0, 3.0])
    got = w.features(rows, z_vec, z_ii, rating, rated, stars)
    # The share of the user's stars given to each genre, then per candidate its genres' sum.
    genre_of = {1: {"Drama", "Horror"}, 3: {"Comedy", "Drama"}, 4: set()}
    share = {g: sum(s for r, s in zip(rated, stars, strict=True) if g in genre_of[r]) / stars.sum()
             for g in GENRES}  # fmt: skip
    candidate_genres = {0: ["Comedy"], 2: [], 5: ["Horror"]}
    for k, row in enumerate(rows):
        expected = [
            z_vec[k], z_ii[k], rating[k], np.log1p([0, 3, 10, 1, 7, 2][row]), w.items[row, 1],
            np.log1p(3), sum(share[g] for g in candidate_genres[row]),
        ]  # fmt: skip
        assert got[k] == pytest.approx(expected, rel=1e-6)


def test_rows_past_the_catalogue_get_no_raters_the_mean_year_and_no_genres():
    w = weights()
    got = w.features(np.array([1, 7]), np.zeros(2), np.zeros(2), np.zeros(2), np.array([1]),
                     np.array([4.0]))  # fmt: skip
    year = FEATURES.index("year")
    assert got[1, FEATURES.index("popularity")] == 0.0
    assert got[1, year] == pytest.approx(w.mean[year])
    assert got[1, FEATURES.index("genre")] == 0.0
    assert got[0, FEATURES.index("genre")] == 2.0  # Drama's share and Horror's, 1 each


def test_scores_equal_a_keras_network_with_the_same_weights():
    import keras

    w = weights(width=4)
    x = np.random.default_rng(1).normal(size=(9, len(FEATURES))).astype(np.float32) * 3
    net = keras.Sequential(
        [keras.Input((len(FEATURES),)), keras.layers.Dense(4, activation="relu"),
         keras.layers.Dense(1)]
    )  # fmt: skip
    net.layers[0].set_weights([w.hidden[:-1], w.hidden[-1]])
    net.layers[1].set_weights([w.output[:-1, None], w.output[-1:]])
    expected = net.predict((x - w.mean) / w.scale, verbose=0)[:, 0]
    assert w.score(x) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_candidates_are_the_union_of_each_scores_best_among_the_unrated():
    rng = np.random.default_rng(2)
    z_vec, z_ii = rng.normal(size=50), rng.normal(size=45)  # 5 rows folded in after the version
    exclude = np.array([int(np.argmax(z_vec)), int(np.argmax(z_ii)), 48])
    got = candidates(z_vec, z_ii, exclude, per_source=6)

    def best(scores):
        order = [int(r) for r in np.argsort(-scores) if r not in set(exclude.tolist())]
        return set(order[:6])

    assert got.tolist() == sorted(best(z_vec) | best(z_ii))
    assert candidates(z_vec, z_ii, exclude, per_source=100).tolist() == sorted(
        set(range(50)) - set(exclude.tolist())
    )


def test_reranked_puts_the_candidates_first_in_the_rankers_order_the_rest_after_in_theirs():
    first = np.array([5.0, 4.0, 3.0, 2.0, 1.0, -np.inf])
    out = reranked(first, np.array([1, 3]), np.array([-7.0, 2.0], np.float32))
    order = np.argsort(-out, kind="stable").tolist()
    assert order == [3, 1, 0, 2, 4, 5]
    assert out[1] == -7.0 and out[3] == 2.0 and out[5] == -np.inf
    assert first[0] == 5.0  # the first stage's scores are left as they were


def test_pieces_that_do_not_fit_together_are_named():
    w = weights(width=3)
    bad = RankerWeights(w.items, w.mean, w.scale, w.hidden, w.output[:-1], 2)
    with pytest.raises(ValueError, match=r"output of shape \(3,\): expected \(4,\)"):
        bad.check()
