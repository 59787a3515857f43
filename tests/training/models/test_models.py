"""Every architecture trains, exports in the same layout and serves through the same API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from app.serving.loader import load_version
from tests.helpers import make_client
from training.config import TrainConfig
from training.evaluation.rating import predict_frame
from training.export import export_version
from training.models.kinds import KINDS, LARGE_DATA, MODEL_KINDS
from training.rating import train_rating as train

pytestmark = pytest.mark.slow  # trains every model kind


@pytest.fixture(scope="module", params=MODEL_KINDS)
def exported_kind(request, tiny_data, tmp_path_factory):
    kind = request.param
    config = TrainConfig.for_model(kind, factors=6, epochs=3, batch_size=128, learning_rate=0.01)
    trained = train(tiny_data, config, log=lambda *_: None)
    root = tmp_path_factory.mktemp(f"models-{kind}")
    path = export_version(trained, root, kind, tiny_data.ratings, tiny_data.items)
    return kind, trained, root, path


def test_saved_model_matches_the_keras_model(exported_kind, tiny_data):
    kind, trained, _, path = exported_kind
    sample = tiny_data.ratings.head(50)
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    served = signature(
        user_id=tf.constant(sample["user_id"].tolist()),
        item_id=tf.constant(sample["item_id"].tolist()),
    )["rating"].numpy()
    fit = trained.exported
    direct = predict_frame(fit.model, fit.users, fit.items, sample, trained.rating_range)
    np.testing.assert_allclose(served, direct, atol=1e-4)


def test_manifest_says_how_recommend_scores(exported_kind):
    kind, trained, _, path = exported_kind
    manifest = json.loads((path / "manifest.json").read_text())
    spec = manifest["recommend"]
    assert manifest["model"]["kind"] == kind
    assert manifest["model"]["parameters"] == trained.exported.model.count_params()
    assert spec["score"] == ("rating" if kind in ("mf", "mf_bias", "autorec") else "dot")
    has_bias = kind in ("mf_bias", "residual", "autorec")
    assert (spec["item_bias"] is not None, spec["user_bias"] is not None) == (has_bias, has_bias)
    assert (path / "item_bias.npy").exists() == has_bias
    assert manifest["training"]["refitted_on_train_and_validation"] is True
    # The exported model learned every rating: it knows every user of the data.
    exported = json.loads((path / "user_ids.json").read_text())
    assert sorted(exported) == sorted(trained.split.everything()["user_id"].unique())


def test_served_through_the_api(exported_kind):
    kind, trained, root, path = exported_kind
    bundle = load_version(path)  # also checks SavedModel == factors for rating-scored kinds
    user = trained.users.to_list()[2]
    with make_client(models_dir=root, model_name=kind) as client:
        body = client.get(f"/recommend/{user}", params={"n": 5}).json()
        items = [i["item_id"] for i in body["items"]]
        pairs = [{"user_id": user, "item_id": i} for i in items]
        predicted = client.post("/predict", json={"instances": pairs}).json()["predictions"]
    u = bundle.user_index[user]
    vectors = bundle.vectors
    scores = vectors.item_factors @ vectors.user_factors[u]
    if vectors.item_bias is not None:
        scores = scores + vectors.item_bias
    seen = set(bundle.seen.of(u).tolist())
    expected = [bundle.item_ids[i] for i in np.argsort(-scores, kind="stable") if i not in seen]
    assert items == expected[:5]
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    direct = signature(user_id=tf.constant([user] * 5), item_id=tf.constant(items))["rating"]
    np.testing.assert_allclose(predicted, direct.numpy(), atol=1e-4)


def test_config_for_model_uses_tuned_defaults_and_overrides():
    assert TrainConfig() == TrainConfig.for_model("mf_bias")
    sgd = TrainConfig.for_model("dnn", optimizer="sgd")
    assert (sgd.model, sgd.optimizer) == ("dnn", "sgd")
    assert sgd.learning_rate == KINDS["dnn"].learning_rates["sgd"]
    assert sgd.dropout == KINDS["dnn"].defaults["dropout"]
    assert TrainConfig.for_model("wide", learning_rate=0.5, factors=None).learning_rate == 0.5
    with pytest.raises(ValueError, match="unknown model 'svd'"):
        TrainConfig.for_model("svd")
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'"):
        TrainConfig.for_model("mf", optimizer="adagrad")


def test_large_data_takes_als_or_the_large_batch_settings_unless_told_otherwise():
    small = TrainConfig.for_model("mf_bias", ratings=LARGE_DATA - 1)
    assert small == TrainConfig()
    als = TrainConfig.for_model("mf_bias", ratings=LARGE_DATA)
    assert (als.solver, als.l2, als.refit, als.epochs) == ("als", 0.08, False, 30)
    assert TrainConfig.for_model("mf_bias", LARGE_DATA, refit=True).refit is True
    large = TrainConfig.for_model("mf_bias", ratings=LARGE_DATA, solver="gradient")
    assert (large.batch_size, large.learning_rate, large.refit, large.epochs, large.l2) == (
        32768,
        0.01,
        False,
        20,
        0.1,
    )
    # A gradient setting given means the gradient loop, at the large settings otherwise.
    assert TrainConfig.for_model("mf_bias", LARGE_DATA, batch_size=1024).batch_size == 1024
    assert TrainConfig.for_model("mf_bias", LARGE_DATA, batch_size=1024).solver == "gradient"
    assert TrainConfig.for_model("mf_bias", LARGE_DATA, learning_rate=0.03).epochs == 20
    # Only Adam's learning rate was chosen at that batch; the MLPs keep their own settings.
    assert TrainConfig.for_model("mf_bias", LARGE_DATA, optimizer="sgd").batch_size == 256
    assert TrainConfig.for_model("dnn", LARGE_DATA) == TrainConfig.for_model("dnn")


def test_without_refit_the_exported_model_is_the_first_fit(tiny_data):
    config = TrainConfig.for_model("mf", factors=4, epochs=2, refit=False)
    trained = train(tiny_data, config, log=lambda *_: None)
    assert not trained.refitted
    assert trained.summary()["refitted_on_train_and_validation"] is False
    assert set(trained.users.to_list()) == set(trained.split.train["user_id"])
    val = predict_frame(
        trained.model, trained.users, trained.items, trained.split.validation, trained.rating_range
    )
    truth = trained.split.validation["rating"].to_numpy()
    assert trained.metrics["validation"]["rmse"] == pytest.approx(
        float(np.sqrt(np.mean((val - truth) ** 2)))
    )


def test_refit_trains_on_train_and_validation_then_exports_a_fit_on_everything(tiny_data):
    lines = []
    trained = train(tiny_data, TrainConfig.for_model("mf", factors=4, epochs=3), log=lines.append)
    split = trained.split
    both = set(split.train["user_id"]) | set(split.validation["user_id"])
    assert set(trained.users.to_list()) == both  # the model test is scored with
    assert set(trained.exported.users.to_list()) == set(tiny_data.ratings["user_id"])
    assert set(trained.exported.items.to_list()) == set(tiny_data.ratings["item_id"])
    assert f"for the {trained.best_epoch} epochs validation chose" in "\n".join(lines)
    assert sum(line.startswith("refit epoch") for line in lines) == trained.best_epoch
    assert sum(line.startswith("final epoch") for line in lines) == trained.best_epoch
    # Test is scored by the train+validation model, which never saw it.
    test_rmse = predict_frame(
        trained.model, trained.users, trained.items, split.test, trained.rating_range
    )
    truth = split.test["rating"].to_numpy()
    assert trained.metrics["test"]["rmse"] == pytest.approx(
        float(np.sqrt(np.mean((test_rmse - truth) ** 2))), abs=1e-5
    )


def test_a_diverging_run_raises_instead_of_returning_nan(tiny_data):
    from training.fitting import TrainingDiverged

    config = TrainConfig.for_model("mf_bias", optimizer="sgd", learning_rate=1e9, epochs=3)
    with pytest.raises(TrainingDiverged, match="diverged .* try a lower --lr"):
        train(tiny_data, config, log=lambda *_: None)


def test_factor_models_give_intervals_and_mlps_say_they_do_not(exported_kind):
    kind, trained, root, _ = exported_kind
    manifest = json.loads((root / kind / "1" / "manifest.json").read_text())
    factor_model = kind in ("mf", "mf_bias")
    assert (manifest["uncertainty"] is not None) == factor_model
    user, item = trained.split.train.iloc[0][["user_id", "item_id"]]
    body = {"instances": [{"user_id": user, "item_id": item}], "interval": 0.9}
    with make_client(models_dir=root, model_name=kind) as client:
        answer = client.post("/predict", json=body).json()
    if factor_model:
        ((low, high),) = answer["intervals"]
        assert low <= answer["predictions"][0] <= high
    else:
        assert "intervals" not in answer
        assert answer["intervals_unavailable"].startswith(f"version 1 ({kind}) gives no interval")
