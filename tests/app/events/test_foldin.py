"""Fold-in: the solvers against independent reference computations, then through the running
app: a new user is personalised from their first rating, /predict answers for them, a known
user's new ratings move their vectors, and a forget or a swap leaves nothing stale."""

from __future__ import annotations

import numpy as np
import pytest

from app.events.changes import Change
from app.events.live import LiveState
from app.events.solvers import (
    ITEM_STRENGTH,
    RidgeFold,
    SoftmaxFold,
    SoftmaxItemFold,
)
from app.events.trust import Trust
from app.events.view import VersionView
from app.serving.loader import load_version
from artifact.posterior import Prior
from tests.helpers import make_client, served_view, wait_for

RNG = np.random.default_rng(7)
N_ITEMS, K = 30, 4
ITEMS = RNG.normal(0, 0.5, (N_ITEMS, K))
ITEM_BIAS = RNG.normal(0, 0.3, N_ITEMS)
USERS = RNG.normal(0.2, 0.4, (50, K))
USER_BIAS = RNG.normal(0.1, 0.2, 50)
ROWS = np.array([3, 7, 11, 19, 25])
RATINGS = np.array([5.0, 4.0, 1.0, 3.5, 4.5])


def test_the_prior_is_the_trained_users_mean_and_inverse_covariance():
    prior = Prior.of(USERS)
    assert np.allclose(prior.mean, USERS.mean(axis=0))
    assert np.allclose(prior.precision @ np.cov(USERS, rowvar=False), np.eye(K), atol=1e-4)


def test_the_ridge_fold_is_the_regularised_least_squares_solution():
    l2, bias_l2, mu, strength = 0.1, 0.02, 3.5, 2.0
    fold = RidgeFold.of(USERS, ITEMS, USER_BIAS, ITEM_BIAS, mu, l2, bias_l2, strength)
    p, b = fold.solve(ROWS, RATINGS)
    z = np.column_stack([ITEMS[ROWS], np.ones(len(ROWS))])
    y = RATINGS - mu - ITEM_BIAS[ROWS]
    expected = ridge_reference(z, y, l2, bias_l2, np.column_stack([USERS, USER_BIAS]), strength)
    assert np.allclose(p, expected[0], atol=1e-5) and b == pytest.approx(expected[1], abs=1e-5)


def test_an_l2_added_once_is_the_autorec_users_ridge_whatever_their_count():
    once, mu, strength = 7.5, 3.5, 2.0
    fold = RidgeFold.of(USERS, ITEMS, USER_BIAS, ITEM_BIAS, mu, 0.0, 0.0, strength, once_l2=once)
    p, b = fold.solve(ROWS, RATINGS)
    # sum (r - mu - b_i - q_i . p - b)^2 + once |p|^2 + strength (x - mean)' P (x - mean)
    z = np.column_stack([ITEMS[ROWS], np.ones(len(ROWS))])
    y = RATINGS - mu - ITEM_BIAS[ROWS]
    population = np.column_stack([USERS, USER_BIAS])
    precision = np.linalg.inv(np.cov(population, rowvar=False))
    a = z.T @ z + np.diag(np.r_[np.full(K, once), 0.0]) + strength * precision
    x = np.linalg.solve(a, z.T @ y + strength * precision @ population.mean(axis=0))
    assert np.allclose(p, x[:K], atol=1e-5) and b == pytest.approx(x[K], abs=1e-5)


def ridge_reference(z, y, l2, bias_l2, population, strength):
    """The ridge fold's objective as one stacked least-squares problem: the data rows, the
    per-example L2 rows, and the prior's rows (its precision's Cholesky factor times the
    offset from the population's mean). Returns (factors, bias)."""
    n, d = z.shape
    penalty = np.diag(np.sqrt(n * np.r_[np.full(d - 1, l2), bias_l2]))
    mean = population.mean(axis=0)
    precision = np.linalg.inv(np.cov(population, rowvar=False))
    root = np.linalg.cholesky(strength * precision).T
    a = np.vstack([z, penalty, root])
    rhs = np.concatenate([y, np.zeros(d), root @ mean])
    x = np.linalg.lstsq(a, rhs, rcond=None)[0]
    return x[:-1], x[-1]


def test_with_no_ratings_a_fold_is_the_average_user():
    ridge = RidgeFold.of(USERS, ITEMS, USER_BIAS, ITEM_BIAS, 3.5, 0.1, 0.0)
    p, b = ridge.solve(np.empty(0, np.int64), np.empty(0))
    assert np.allclose(p, USERS.mean(axis=0), atol=1e-6)
    assert b == pytest.approx(USER_BIAS.mean(), abs=1e-6)
    softmax = SoftmaxFold(USERS, ITEMS, ITEM_BIAS, 3.5, True)
    assert np.allclose(softmax.solve(np.empty(0, np.int64), np.empty(0)), USERS.mean(axis=0))


def softmax_objective(p, weights, strength, prior):
    logits = ITEMS @ p + ITEM_BIAS
    log_softmax = logits - np.log(np.exp(logits).sum())
    d = p - prior.mean
    return weights @ log_softmax[ROWS] - strength / 2 * d @ prior.precision @ d


def test_the_softmax_fold_maximises_the_weighted_log_softmax_with_the_prior():
    strength, mean_rating = 3.0, 3.5
    fold = SoftmaxFold(USERS, ITEMS, ITEM_BIAS, mean_rating, True, strength)
    p = fold.solve(ROWS, RATINGS).astype(np.float64)
    weights = RATINGS / mean_rating
    prior = Prior.of(USERS)
    # Its gradient, written out independently, vanishes there...
    pi = np.exp(ITEMS @ p + ITEM_BIAS)
    pi /= pi.sum()
    grad = weights @ ITEMS[ROWS] - weights.sum() * pi @ ITEMS
    grad -= strength * prior.precision @ (p - prior.mean)
    assert np.abs(grad).max() < 1e-4
    # ...and no nearby point scores higher.
    best = softmax_objective(p, weights, strength, prior)
    for _ in range(50):
        nudged = p + RNG.normal(0, 0.05, K)
        assert softmax_objective(nudged, weights, strength, prior) < best
    # Unweighted: every rating counts 1.
    flat = SoftmaxFold(USERS, ITEMS, ITEM_BIAS, mean_rating, False, strength).solve(ROWS, RATINGS)
    grad = ITEMS[ROWS].sum(0) - len(ROWS) * _softmax(flat) @ ITEMS
    assert np.abs(grad - strength * prior.precision @ (flat - prior.mean)).max() < 1e-4


def test_a_strong_prior_keeps_the_vector_where_it_is_centred():
    fold = SoftmaxFold(USERS, ITEMS, ITEM_BIAS, 3.5, True)
    centre = USERS[4]
    kept = fold.solve(ROWS, RATINGS, mean=centre, strength=1e9)
    assert np.allclose(kept, centre, atol=1e-5)
    moved = fold.solve(ROWS, RATINGS, mean=centre, strength=0.1)
    assert (ITEMS[ROWS[0]] @ moved) > (ITEMS[ROWS[0]] @ centre)  # toward the 5-star item


def _softmax(p):
    e = np.exp(ITEMS @ p + ITEM_BIAS)
    return e / e.sum()


# --- through the app ------------------------------------------------------------------------


@pytest.fixture
def served(default_version):
    models_dir, path = default_version
    with make_client(models_dir=models_dir, model_name="both") as client:
        yield client, load_version(path)


def post(client, user, pairs):
    events = [{"user_id": user, "item_id": i, "rating": r} for i, r in pairs]
    response = client.post("/events", json={"events": events})
    assert response.status_code == 200, response.text


def test_a_new_user_is_personalised_from_their_first_rating(served):
    client, loaded = served
    item = loaded.item_ids[5]
    assert client.get("/recommend/fresh").json()["source"] == "popular"
    post(client, "fresh", [(item, 5)])
    body = client.get("/recommend/fresh", params={"n": 5}).json()
    assert body["source"] == "fold_in"
    # The reference: the version's own vectors, solved from that one rating, plus the
    # popularity blend for one rating; the rated item never comes back.
    folder = served_view(client).folder
    row = np.array([loaded.item_index[item]])
    p = folder.softmax.solve(row, np.array([5.0]))
    raters = np.bincount(loaded.seen.indices, minlength=loaded.n_items).astype(np.float64)
    raters[row] += 1
    scores = loaded.vectors.item_factors @ p + loaded.vectors.item_bias
    scores = scores + folder.trust.popularity_weight(1) * np.log1p(raters)
    scores[row] = -np.inf
    best = np.argsort(-scores, kind="stable")[:5]
    assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in best]
    assert [i["score"] for i in body["items"]] == pytest.approx(scores[best], abs=1e-4)
    batch = client.post("/recommend", json={"user_ids": ["fresh"], "n": 5}).json()["results"]
    assert batch[0]["source"] == "fold_in" and batch[0]["items"] == body["items"]
    assert client.get("/recommend/fresh", params={"fallback": "false"}).status_code == 200


def test_predict_answers_for_a_folded_in_user_from_their_factors(served):
    client, loaded = served
    rated = [(loaded.item_ids[1], 5), (loaded.item_ids[2], 1)]
    post(client, "newbie", rated)
    target = loaded.item_ids[9]
    response = client.post(
        "/predict", json={"instances": [{"user_id": "newbie", "item_id": target}]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sources"] == ["fold_in"]
    ridge = served_view(client).folder.ridge
    rows = np.array([loaded.item_index[i] for i, _ in rated])
    p, b = ridge.solve(rows, np.array([5.0, 1.0]))
    col = loaded.item_index[target]
    v = loaded.rating_vectors
    expected = loaded.manifest.global_mean + b + v.item_factors[col] @ p + v.item_bias[col]
    low, high = loaded.manifest.rating_range
    assert body["predictions"][0] == pytest.approx(np.clip(expected, low, high), abs=1e-5)
    # Someone with no ratings at all is still unknown to /predict.
    stranger = client.post(
        "/predict", json={"instances": [{"user_id": "nobody", "item_id": target}]}
    )
    assert stranger.status_code == 404 and "nobody" in stranger.text


def test_a_known_users_new_rating_moves_their_vectors(served):
    client, loaded = served
    user = next(iter(loaded.user_index))
    row = loaded.user_index[user]
    seen = set(loaded.seen.of(row).tolist())
    item = next(i for i in loaded.item_ids if loaded.item_index[i] not in seen)
    pair = {"instances": [{"user_id": user, "item_id": item}]}
    before = client.post("/predict", json=pair).json()
    assert before["sources"] == ["model"]
    post(client, user, [(item, 5)])
    after = client.post("/predict", json=pair).json()
    assert after["sources"] == ["fold_in"]
    assert after["predictions"][0] > before["predictions"][0]  # toward the 5 stars given
    body = client.get(f"/recommend/{user}").json()
    assert body["source"] == "fold_in" and item not in [i["item_id"] for i in body["items"]]


def test_a_forgotten_user_loses_their_fold_in_at_once(served):
    client, loaded = served
    post(client, "leaving", [(loaded.item_ids[3], 4)])
    assert client.get("/recommend/leaving").json()["source"] == "fold_in"
    assert client.delete("/users/leaving").status_code == 200
    assert client.get("/recommend/leaving").json()["source"] == "popular"
    pair = {"instances": [{"user_id": "leaving", "item_id": loaded.item_ids[0]}]}
    assert client.post("/predict", json=pair).status_code == 404


def test_a_swap_folds_everyone_in_again_against_the_new_version(served, default_version):
    client, loaded = served
    post(client, "stays", [(loaded.item_ids[4], 5), (loaded.item_ids[6], 2)])
    before = served_view(client).user("stays").folded  # solved at this first read
    again = load_version(default_version[1])  # the same files, loaded anew: another object
    service = client.app.state.service
    (live,) = client.portal.call(service.events.serve, [again])
    wait_for(lambda: "stays" in live.view.folded, 10)
    after = live.view.folded["stays"]
    assert live.view.loaded is again and after is not before
    assert np.allclose(after.vector, before.vector, atol=1e-6)


# --- new items ----------------------------------------------------------------------------------


def register(client, item, title="A New Film (2026)"):
    body = {"title": title, "genres": ["Drama"], "year": 2026}
    assert client.put(f"/items/{item}", json=body).status_code == 200


def test_a_new_item_is_folded_in_after_enough_ratings_from_known_users(served):
    client, loaded = served
    register(client, "premiere")
    users = list(loaded.user_index)
    post(client, "outsider", [("premiere", 5)])  # unknown to the model: does not count
    for user in users[:4]:
        post(client, user, [("premiere", 5)])
    viewer = users[10]
    pair = {"instances": [{"user_id": viewer, "item_id": "premiere"}]}
    assert client.post("/predict", json=pair).status_code == 404
    everything = {"n": loaded.n_items + 1}
    shown = client.get(f"/recommend/{viewer}", params=everything).json()["items"]
    assert "premiere" not in [i["item_id"] for i in shown]

    post(client, users[4], [("premiere", 4)])  # the fifth known rater (RECSYS_MIN_ITEM_RATINGS)
    body = client.post("/predict", json=pair).json()
    assert body["sources"] == ["fold_in"]
    # The reference: the rating model's loss restricted to the item, against the five raters'
    # frozen vectors, with the trained items as the prior (the ridge solver, roles swapped).
    v = loaded.rating_vectors
    mean = loaded.manifest.global_mean
    rows = np.array([loaded.user_index[u] for u in users[:5]])
    user_bias = v.user_offset - mean
    q, b = ridge_reference(
        np.column_stack([v.user_factors[rows], np.ones(5)]),
        np.array([5.0, 5, 5, 5, 4]) - mean - user_bias[rows],
        loaded.manifest.training["l2"],
        loaded.manifest.training["bias_l2"],
        np.column_stack([v.item_factors, v.item_bias]),
        ITEM_STRENGTH,
    )
    r = loaded.user_index[viewer]
    expected = mean + (v.user_offset[r] - mean) + b + v.user_factors[r] @ q
    low, high = loaded.manifest.rating_range
    assert body["predictions"][0] == pytest.approx(np.clip(expected, low, high), abs=1e-5)
    # Ranked with everything else for users who did not rate it, shown as registered...
    shown = client.get(f"/recommend/{viewer}", params=everything).json()["items"]
    mine = [i for i in shown if i["item_id"] == "premiere"]
    assert mine and mine[0]["title"] == "A New Film (2026)" and mine[0]["genres"] == ["Drama"]
    batch = client.post("/recommend", json={"user_ids": [viewer], **everything}).json()
    assert [i["item_id"] for i in batch["results"][0]["items"]] == [i["item_id"] for i in shown]
    # ...and never to those who did.
    rater = client.get(f"/recommend/{users[0]}", params=everything).json()["items"]
    assert "premiere" not in [i["item_id"] for i in rater]


def test_one_predict_request_answers_every_kind_of_pair_as_it_would_alone(served):
    client, loaded = served
    register(client, "debut")
    users = list(loaded.user_index)
    for user in users[:5]:
        post(client, user, [("debut", 4)])  # five known raters: "debut" is folded in
    post(client, "novice", [(loaded.item_ids[1], 5), (loaded.item_ids[2], 2)])
    post(client, users[30], [(loaded.item_ids[5], 1)])
    trained, film = users[20], loaded.item_ids[7]
    pairs = [
        ("novice", film, "fold_in"),  # a folded-in user, a trained film
        (trained, film, "model"),  # a trained pair: the model's own answer
        (trained, "debut", "fold_in"),  # a trained user, a new film
        ("novice", "debut", "fold_in"),  # both folded in
        (users[30], film, "fold_in"),  # a trained user with a live rating
        (trained, loaded.item_ids[3], "model"),
        ("novice", film, "fold_in"),  # the same pair again
    ]
    one = [
        client.post("/predict", json={"instances": [{"user_id": u, "item_id": i}]}).json()
        for u, i, _ in pairs
    ]
    instances = [{"user_id": u, "item_id": i} for u, i, _ in pairs]
    body = client.post("/predict", json={"instances": instances}).json()
    assert body["sources"] == [source for _, _, source in pairs]
    assert [alone["sources"][0] for alone in one] == body["sources"]
    assert body["predictions"] == pytest.approx(
        [alone["predictions"][0] for alone in one], abs=1e-6
    )
    assert body["predictions"][0] == body["predictions"][-1]


def test_the_softmax_item_fold_solves_the_retrieval_objective_for_the_item(default_version):
    loaded = load_version(default_version[1])
    rows, ratings = np.array([0, 3, 5, 8, 13]), np.array([5.0, 4, 3, 5, 2])
    q, b = SoftmaxItemFold(loaded, weighted=True).solve(rows, ratings)
    # Its gradient, written out independently: the raters pull, every user's softmax (which
    # the item joins) pushes back in proportion to their training weight, the prior holds.
    v, mean = loaded.vectors, loaded.manifest.global_mean
    users = np.asarray(v.user_factors, np.float64)
    logits = users @ np.asarray(v.item_factors, np.float64).T + v.item_bias
    z_u = np.exp(logits).sum(axis=1)
    bounds = zip(loaded.seen.indptr[:-1], loaded.seen.indptr[1:], strict=True)
    weight = np.array([loaded.seen.ratings[lo:hi].sum() / mean for lo, hi in bounds])
    t = users @ q.astype(np.float64) + b
    share = np.exp(t) / (z_u + np.exp(t))
    with_one = np.column_stack([users, np.ones(len(users))])
    prior = Prior.of(np.column_stack([v.item_factors, v.item_bias]))
    x = np.r_[q, b]
    grad = (ratings / mean) @ with_one[rows] - (weight * share) @ with_one
    grad -= ITEM_STRENGTH * prior.precision @ (x - prior.mean)
    assert np.abs(grad).max() < 1e-3 * max(1.0, np.abs((weight * share) @ with_one).max())


def test_solving_many_users_at_once_gives_each_their_own_answer():
    """The batched solvers (what the fold-in thread runs) against one solve per user, with
    different rating counts, centres and strengths, a user with no ratings among them."""
    rows = [ROWS, ROWS[:1], np.empty(0, np.int64), np.array([0, 29, 14])]
    ratings = [RATINGS, RATINGS[:1], np.empty(0), np.array([1.0, 5.0, 3.0])]
    centres = RNG.normal(0.2, 0.3, (4, K))
    strengths = np.array([1.0, 0.5, 3.0, 20.0])
    softmax = SoftmaxFold(USERS, ITEMS, ITEM_BIAS, 3.5, True)
    together = softmax.solve_many(rows, ratings, centres, strengths)
    for u in range(4):
        alone = softmax.solve(rows[u], ratings[u], centres[u], strengths[u])
        assert np.allclose(together[u], alone, atol=1e-5)
    ridge = RidgeFold.of(USERS, ITEMS, USER_BIAS, ITEM_BIAS, 3.5, 0.1, 0.02)
    with_bias = np.column_stack([centres, RNG.normal(0, 0.2, 4)])
    factors, biases = ridge.solve_many(rows, ratings, with_bias, strengths)
    for u in range(4):
        p, b = ridge.solve(rows[u], ratings[u], with_bias[u], strengths[u])
        assert np.allclose(factors[u], p, atol=1e-5) and biases[u] == pytest.approx(b, abs=1e-5)


def test_grouped_gram_sums_each_groups_outer_products_across_chunks():
    from app.events.solvers import grouped_gram

    z, y = RNG.normal(size=(9, 3)), RNG.normal(size=9)
    counts = np.array([4, 0, 1, 4])  # groups straddle chunks of 2 rows; one group is empty
    gram, cross = grouped_gram(z, y, counts, chunk=2)
    bounds = np.r_[0, np.cumsum(counts)]
    for g in range(4):
        part = slice(bounds[g], bounds[g + 1])
        assert np.allclose(gram[g], z[part].T @ z[part])
        assert np.allclose(cross[g], z[part].T @ y[part])


def test_trust_takes_each_counts_settings_up_to_the_next_and_fades_popularity_past_the_last():
    trust = Trust(1.0, at=(1, 3, 10), popularity=(8.0, 4.0, 2.0), blend=(0.0, 0.1, 0.3), half=5)
    got = [(trust.popularity_weight(n), trust.blend_weight(n)) for n in (0, 1, 2, 3, 9, 10)]
    assert got == [(8.0, 0.0), (8.0, 0.0), (8.0, 0.0), (4.0, 0.1), (4.0, 0.1), (2.0, 0.3)]
    assert trust.popularity_weight(25) == pytest.approx(2.0 * 15 / 30)  # half of it at 25
    assert trust.blend_weight(25) == 0.3
    with pytest.raises(ValueError, match="one value per count"):
        Trust(1.0, at=(1, 3), popularity=(1.0,), blend=(0.0, 0.0), half=5)
    with pytest.raises(ValueError, match="must rise"):
        Trust(1.0, at=(3, 1), popularity=(1.0, 1.0), blend=(0.0, 0.0), half=5)


# --- solved at the next read ---------------------------------------------------------------------


def test_a_written_user_is_solved_at_their_next_read_not_by_the_write(default_version):
    loaded = load_version(default_version[1])
    live = LiveState()
    view = VersionView(loaded, live.log, 0)
    live.install(live.log, [view])
    first = loaded.item_ids[2]
    assert live.apply([Change(1, "rating", "u", first, 4.0, 1)]) == []  # no fold-in owed
    assert "u" in view.stale and "u" not in view.folded
    seen = view.user("u")
    expected = view.folder.fold(np.array([2]), np.array([4.0]), None, 0)
    assert seen.folded is not None and not seen.pending and "u" not in view.stale
    assert view.folded["u"] is seen.folded
    assert np.allclose(seen.folded.vector, expected.vector)
    assert view.user("u").folded is seen.folded  # not solved again


def test_a_rating_that_lands_during_a_solve_keeps_the_user_stale(default_version, monkeypatch):
    loaded = load_version(default_version[1])
    live = LiveState()
    view = VersionView(loaded, live.log, 0)
    live.install(live.log, [view])
    first, second = loaded.item_ids[2], loaded.item_ids[9]
    live.apply([Change(1, "rating", "u", first, 4.0, 1)])
    solve = view.folder.fold_many

    def racing(*args):  # another thread applies a write after the solve's snapshot
        live.apply([Change(2, "rating", "u", second, 5.0, 2)])
        return solve(*args)

    monkeypatch.setattr(view.folder, "fold_many", racing)
    answered = view.user("u")
    assert set(answered.live) == {first} and answered.folded is not None
    assert "u" in view.stale and "u" not in view.folded  # the solve was not kept
    monkeypatch.setattr(view.folder, "fold_many", solve)
    again = view.user("u")
    assert set(again.live) == {first, second} and "u" not in view.stale
    expected = view.folder.fold(np.array([2, 9]), np.array([4.0, 5.0]), None, 0)
    assert np.allclose(view.folded["u"].vector, expected.vector)
