"""I-AutoRec as a model kind (training.models.autorec, training.autorec): its rating against a
numpy reference of the paper's network, its exported factors reproducing that rating, the
full-batch fit, and a version of it served with a new user folded in."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import make_client
from training.config import TrainConfig
from training.models.autorec import MAX_CELLS, ItemAutoRec
from training.rating import train_rating

SMALL = {"factors": 8, "l2": 5.0, "epochs": 4, "patience": 2}


@pytest.fixture(scope="module")
def autorec(tiny_data):
    config = TrainConfig.for_model("autorec", **SMALL)
    return train_rating(tiny_data, config, log=lambda *_: None)


def reference(model, users, items):
    """mu + c_u + b_i + W_u . sigmoid(V' r_i + e), in numpy from the model's weights."""
    r = model.ratings.numpy()
    v, e, w = model.encoder.numpy(), model.encoder_bias.numpy(), model.decoder.numpy()
    codes = 1 / (1 + np.exp(-(r[items] @ v + e)))
    return (
        model.global_mean + model.user_bias.numpy()[users] + model.item_bias.numpy()[items]
        + np.einsum("nk,nk->n", codes, w[users])
    )  # fmt: skip


def test_the_rating_is_the_papers_network_on_the_items_ratings(autorec):
    model = autorec.exported.model
    rng = np.random.default_rng(0)
    users = rng.integers(0, model.n_users, 50)
    items = rng.integers(0, model.n_items, 50)
    got = model({"user": users, "item": items}).numpy()
    assert got == pytest.approx(reference(model, users, items), abs=1e-4)
    # A user it never saw (the out-of-vocabulary row) is predicted mu + b_i, as by mf_bias.
    unknown = model({"user": np.array([model.n_users]), "item": np.array([3])}).numpy()[0]
    assert unknown == pytest.approx(model.global_mean + model.item_bias.numpy()[3], abs=1e-5)
    # It holds the ratings it was fitted on: every one, at its place.
    frame = autorec.split.everything()
    u, i = (
        autorec.exported.users.lookup(frame["user_id"]),
        autorec.exported.items.lookup(frame["item_id"]),
    )
    assert np.count_nonzero(model.ratings.numpy()) == len(frame)
    assert model.ratings.numpy()[i, u] == pytest.approx(frame["rating"].to_numpy())


def test_the_exported_factors_reproduce_the_rating(autorec):
    model = autorec.exported.model
    arrays = model.factors_for_export()
    users, items = np.arange(model.n_users), np.arange(model.n_items) % model.n_items
    users = np.resize(users, 60)
    items = np.resize(items, 60)
    factors = (
        model.global_mean + arrays["user_bias"][users] + arrays["item_bias"][items]
        + np.einsum("nk,nk->n", arrays["user_factors"][users], arrays["item_factors"][items])
    )  # fmt: skip
    assert factors == pytest.approx(model({"user": users, "item": items}).numpy(), abs=1e-4)
    assert arrays["item_factors"].shape == (model.n_items, SMALL["factors"])


def test_the_fit_lowers_the_training_error_and_stops_on_validation(autorec):
    history = autorec.history
    assert history["loss"][-1] < history["loss"][0]
    assert 1 <= autorec.best_epoch <= len(history["val_loss"])
    assert autorec.best_epoch == int(np.argmin(history["val_loss"])) + 1


def test_too_large_a_matrix_is_refused_with_its_size():
    with pytest.raises(ValueError, match=r"10,000 x 6,000 is 60,016,001 cells, over 50,000,000"):
        ItemAutoRec(6_000, 10_000)
    assert MAX_CELLS == 50_000_000
    with pytest.raises(ValueError, match="regularization 'sum'"):
        ItemAutoRec(10, 10, regularization="example")


def test_a_version_serves_predictions_and_folds_in_a_new_user(autorec, tiny_data, tmp_path):
    from training.export import export_version

    export_version(autorec, tmp_path, "ar", tiny_data.ratings, tiny_data.items)
    with make_client(models_dir=tmp_path, model_name="ar", max_n=20) as client:
        users, items = autorec.exported.users.to_list(), autorec.exported.items.to_list()
        body = {"instances": [{"user_id": users[3], "item_id": items[5]}]}
        got = client.post("/predict", json=body).json()["predictions"][0]
        model = autorec.exported.model
        expected = float(np.clip(reference(model, np.array([3]), np.array([5]))[0], 1, 5))
        assert got == pytest.approx(expected, abs=1e-3)
        events = [{"user_id": "newcomer", "item_id": items[k], "rating": 5} for k in range(4)]
        assert client.post("/events", json={"events": events}).status_code == 200
        body = {"instances": [{"user_id": "newcomer", "item_id": items[9]}]}
        answer = client.post("/predict", json=body)
        assert answer.status_code == 200, answer.text
        assert 1.0 <= answer.json()["predictions"][0] <= 5.0
        ranked = client.get("/recommend/newcomer", params={"by": "rating", "n": 5}).json()
        assert ranked["source"] == "fold_in"
        assert not {i["item_id"] for i in ranked["items"]} & set(items[:4])
