"""Intervals on /predict: the calibration training writes (validation residuals of the first
fit), and the service's [low, high] per pair against the posterior computed here from the
version's files."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_training_calibrates_on_validation_residuals(trained, default_version):
    _, path = default_version
    spec = json.loads((path / "manifest.json").read_text())["uncertainty"]
    assert spec["validation_ratings"] <= len(trained.split.validation)
    assert spec["levels"][0] == 0.01 and spec["levels"][-1] == 0.99 and len(spec["levels"]) == 99
    assert np.all(np.diff(spec["multipliers"]) >= 0)  # wider for surer intervals
    # The noise is the first fit's validation MSE (its validation RMSE, squared).
    assert spec["noise"] == pytest.approx(trained.metrics["validation"]["rmse"] ** 2, rel=0.02)


def reference(loaded, spec, user, items, predicted, level):
    """Posterior of [p_u, b_u] given the item features, by the book."""
    v = loaded.rating_vectors
    mean = loaded.manifest.global_mean
    f = np.column_stack([np.asarray(v.item_factors, np.float64), np.ones(loaded.n_items)])
    x = np.column_stack(
        [np.asarray(v.user_factors, np.float64), np.asarray(v.user_offset, np.float64) - mean]
    )
    cov = np.cov(x, rowvar=False)
    floor = 1e-6 * np.trace(cov) / len(cov)
    prior = np.linalg.inv(cov + floor * np.eye(len(cov)))
    rated = f[loaded.seen.of(loaded.user_index[user])]
    posterior = np.linalg.inv(rated.T @ rated / spec["noise"] + prior)
    out = []
    half = np.interp(level, spec["levels"], spec["multipliers"])
    for item, r in zip(items, predicted, strict=True):
        q = f[loaded.item_index[item]]
        sd = np.sqrt(spec["noise"] + q @ posterior @ q)
        out.append([max(r - half * sd, 1.0), min(r + half * sd, 5.0)])
    return np.array(out)


def test_intervals_are_the_posterior_spread_times_the_calibrated_multiplier(served):
    client, loaded = served
    spec = loaded.manifest.uncertainty.model_dump()
    user = list(loaded.user_index)[6]
    items = loaded.item_ids[:5]
    instances = [{"user_id": user, "item_id": i} for i in items]
    plain = client.post("/predict", json={"instances": instances}).json()
    assert "intervals" not in plain  # only when asked for
    body = client.post("/predict", json={"instances": instances, "interval": 0.9}).json()
    assert body["predictions"] == plain["predictions"]
    want = reference(loaded, spec, user, items, body["predictions"], 0.9)
    np.testing.assert_allclose(body["intervals"], want, atol=2e-4)
    narrow = client.post("/predict", json={"instances": instances, "interval": 0.5}).json()
    for (lo9, hi9), (lo5, hi5), r in zip(
        body["intervals"], narrow["intervals"], body["predictions"], strict=True
    ):
        assert lo9 <= lo5 <= r <= hi5 <= hi9 and hi5 - lo5 < hi9 - lo9


def test_a_users_interval_narrows_as_their_ratings_add_up(served):
    client, loaded = served
    item = loaded.item_ids[0]
    widths = []
    rated = [i for i in loaded.item_ids[1:] if i != item]
    for count in (0, 1, 5, 20):
        if count:
            events = [{"user_id": "learner", "item_id": i, "rating": 4} for i in rated[:count]]
            assert client.post("/events", json={"events": events}).status_code == 200
        body = client.post(
            "/predict",
            json={"instances": [{"user_id": "learner", "item_id": item}], "interval": 0.8},
        )
        if count == 0:
            assert body.status_code == 404  # no history: /predict knows no such user
            continue
        ((low, high),) = body.json()["intervals"]
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0


def test_an_interval_outside_0_01_to_0_99_is_a_422(served):
    client, loaded = served
    user = list(loaded.user_index)[0]
    one = [{"user_id": user, "item_id": loaded.item_ids[0]}]
    for bad in (0, 1, 1.5, -0.2):
        answer = client.post("/predict", json={"instances": one, "interval": bad})
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == [
            "body",
            "interval",
        ]


@pytest.mark.parametrize("max_users", [None, 10])
def test_the_calibrated_multipliers_are_the_quantiles_of_each_validation_ratings_z(
    trained, max_users
):
    """calibrate's multipliers against the book, one validation rating at a time: the residual
    over the predictive sd from that user's posterior given what they rated in training. Past
    `max_users` users, the quantiles are those of a seeded sample's ratings."""
    from artifact.posterior import LEVELS, Prior, features, user_features
    from training.evaluation.calibration import calibrate, sampled_users

    fit, split = trained.fitted.first, trained.split
    whole = calibrate("mf_bias", fit, split.train, split.validation, (1.0, 5.0))
    spec = whole
    chosen = None
    if max_users is not None:
        spec = calibrate("mf_bias", fit, split.train, split.validation, (1.0, 5.0), max_users)
        users = fit.users.lookup(split.validation["user_id"])
        items = fit.items.lookup(split.validation["item_id"])
        known = np.unique(users[(users < fit.users.oov) & (items < fit.items.oov)])
        assert len(known) > max_users
        chosen = set(sampled_users(known, max_users).tolist())
        assert len(chosen) == max_users
        assert spec.noise == whole.noise  # every validation rating still sets the noise
    arrays = fit.model.factors_for_export()
    f = features(arrays["item_factors"], arrays["item_bias"])
    prior = Prior.of(user_features(arrays["user_factors"], arrays["user_bias"]))
    rated_by = split.train.groupby("user_id")["item_id"].agg(list)
    z = []
    for user, item, rating in split.validation[["user_id", "item_id", "rating"]].itertuples(
        index=False
    ):
        u, i = fit.users.lookup([user])[0], fit.items.lookup([item])[0]
        if u == fit.users.oov or i == fit.items.oov or (chosen is not None and u not in chosen):
            continue
        predicted = (
            float(fit.model.global_mean)
            + arrays["user_factors"][u] @ arrays["item_factors"][i]
            + arrays["user_bias"][u]
            + arrays["item_bias"][i]
        )
        predicted = min(max(predicted, 1.0), 5.0)
        rated = f[fit.items.lookup(rated_by[user])]
        posterior = np.linalg.inv(rated.T @ rated / spec.noise + prior.precision)
        sd = np.sqrt(spec.noise + f[i] @ posterior @ f[i])
        z.append(abs(rating - predicted) / sd)
    assert spec.validation_ratings == len(z)
    # float32 vectors, summed in another order here: equal to ~1e-5
    assert spec.multipliers == pytest.approx(list(np.quantile(z, LEVELS)), rel=1e-4)
