"""Save, reload the way production does, compare; and the version directory contract."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import tensorflow as tf

from app.serving.loader import load_newest
from artifact.layout import list_versions
from training import export as export_module
from training.evaluation.rating import predict_frame
from training.export import export_version


def factor_ratings(version_dir, users, items):
    """The rating formula on the exported .npy files, clipped like the SavedModel."""
    manifest = json.loads((version_dir / "manifest.json").read_text())
    ids_u = json.loads((version_dir / "user_ids.json").read_text())
    ids_i = json.loads((version_dir / "item_ids.json").read_text())
    p, q = np.load(version_dir / "user_factors.npy"), np.load(version_dir / "item_factors.npy")
    bu, bi = np.load(version_dir / "user_bias.npy"), np.load(version_dir / "item_bias.npy")
    u = [ids_u.index(x) for x in users]
    i = [ids_i.index(x) for x in items]
    raw = manifest["global_mean"] + bu[u] + bi[i] + np.sum(p[u] * q[i], axis=1)
    return np.clip(raw, *manifest["rating_range"])


def test_saved_model_equals_keras_model_and_factor_files(trained, version_dir, tiny_data):
    sample = tiny_data.ratings.sample(200, random_state=0)
    users, items = sample["user_id"].tolist(), sample["item_id"].tolist()
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    served = signature(user_id=tf.constant(users), item_id=tf.constant(items))["rating"].numpy()
    fit = trained.exported  # fitted on every rating: every id in the data is known to it
    keras_side = predict_frame(fit.model, fit.users, fit.items, sample, trained.rating_range)
    np.testing.assert_allclose(served, keras_side, atol=1e-4)
    np.testing.assert_allclose(served, factor_ratings(version_dir, users, items), atol=1e-4)
    assert served.dtype == np.float32 and served.min() >= 1.0 and served.max() <= 5.0


def test_saved_model_falls_back_for_unknown_ids(trained, version_dir):
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    item = trained.items.to_list()[0]
    out = signature(user_id=tf.constant(["nobody"]), item_id=tf.constant([item]))["rating"]
    item_bias = np.load(version_dir / "item_bias.npy")[0]
    mean = float(trained.exported.model.global_mean)
    expected = np.clip(mean + item_bias, *trained.rating_range)
    np.testing.assert_allclose(out.numpy(), [expected], atol=1e-5)


def test_manifest_lists_every_file_with_its_checksum(version_dir, trained):
    manifest = json.loads((version_dir / "manifest.json").read_text())
    on_disk = {str(p.relative_to(version_dir)) for p in version_dir.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((version_dir / name).read_bytes()).hexdigest() == digest
    assert {"saved_model.pb", "user_factors.npy", "seen_indptr.npy", "items.json"} <= on_disk
    items = json.loads((version_dir / "items.json").read_text())
    assert items[0] == {"title": "Movie 1 (1950)", "genres": items[0]["genres"], "year": 1950}
    assert manifest["format_version"] == 1 and manifest["version"] == 1
    assert manifest["model"] == {**manifest["model"], "kind": "mf_bias", "factors": 8}
    assert manifest["counts"]["users"] == len(trained.exported.users)
    # Test figures from the model that never saw test; the version learned every rating.
    assert manifest["metrics"]["test"]["rmse"] == pytest.approx(trained.metrics["test"]["rmse"])
    assert manifest["training"]["test_metrics_from_model_fitted_on"] == "train+validation"
    assert manifest["training"]["exported_model_fitted_on"] == "train+validation+test"
    assert manifest["tensorflow_version"] == tf.__version__


def test_seen_items_are_every_rating_given(version_dir, tiny_data):
    ids_u = json.loads((version_dir / "user_ids.json").read_text())
    ids_i = json.loads((version_dir / "item_ids.json").read_text())
    indptr, indices = (
        np.load(version_dir / "seen_indptr.npy"),
        np.load(version_dir / "seen_indices.npy"),
    )
    user = ids_u[3]
    seen = {ids_i[i] for i in indices[indptr[3] : indptr[4]]}
    rated = set(tiny_data.ratings.loc[tiny_data.ratings["user_id"] == user, "item_id"])
    assert seen == rated & set(ids_i)


def test_versions_count_up_and_load_back_through_the_service_loader(tmp_path, trained, tiny_data):
    for expected in (1, 2):
        path = export_version(trained, tmp_path, "m", tiny_data.ratings)
        assert path == tmp_path / "m" / str(expected)
    assert list_versions(tmp_path / "m") == [2, 1]
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".")] == []
    bundle = load_newest(tmp_path / "m")
    assert (bundle.version, bundle.titles) == (2, None)
    assert bundle.item_ids == trained.items.to_list()


def test_a_failed_export_leaves_nothing_behind(tmp_path, trained, tiny_data, monkeypatch):
    def broken(*_):
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "_write_arrays", broken)
    with pytest.raises(OSError, match="disk full"):
        export_version(trained, tmp_path, "m", tiny_data.ratings)
    assert list((tmp_path / "m").iterdir()) == []


def test_signature_def_is_what_tensorflow_serving_reads(version_dir):
    """TF Serving loads the 'serve' MetaGraph and its serving_default SignatureDef (the REST
    predict API): string user_id/item_id of any batch size in, float rating out."""
    from tensorflow.python.tools import saved_model_utils

    meta_graph = saved_model_utils.get_meta_graph_def(str(version_dir), "serve")
    signature = meta_graph.signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    for name in ("user_id", "item_id"):
        tensor = signature.inputs[name]
        assert tensor.dtype == tf.string.as_datatype_enum
        assert [d.size for d in tensor.tensor_shape.dim] == [-1]
    assert list(signature.outputs) == ["rating"]
    assert signature.outputs["rating"].dtype == tf.float32.as_datatype_enum
