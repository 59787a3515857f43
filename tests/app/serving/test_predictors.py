"""RECSYS_PREDICT_FROM=factors: /predict's ratings from the factor files equal the SavedModel's
(unknown ids included), a worker serving that way never imports TensorFlow, a version whose
factors do not reproduce its rating keeps its SavedModel, and `auto` (the default) takes the
factors only for large catalogues."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np

from app.serving.loader import load_version
from artifact.files import read_ids
from tests.helpers import MODEL_NAME, ROOT, fresh_store_url


def test_factor_ratings_equal_the_saved_models_for_known_and_unknown_ids(version_dir):
    served = load_version(version_dir)
    factors = load_version(version_dir, predict_from="factors")
    assert (served.predict_from, factors.predict_from) == ("savedmodel", "factors")
    assert factors.saved_model is None
    users = [*read_ids(version_dir / "user_ids.json"), "nobody"]
    items = [*read_ids(version_dir / "item_ids.json"), "nothing"]
    pairs = [(u, i) for u in users for i in items]
    user_ids, item_ids = [u for u, _ in pairs], [i for _, i in pairs]
    want = served.predict_ratings(user_ids, item_ids)
    got = factors.predict_ratings(user_ids, item_ids)
    assert got.dtype == np.float32 and got.shape == (len(pairs),)
    np.testing.assert_allclose(got, want, atol=2e-6)
    low, high = served.manifest.rating_range
    assert got.min() >= low and got.max() <= high
    # An unknown user with an unknown item: the global mean, as the SavedModel's OOV rows say.
    assert got[-1] == np.float32(served.manifest.global_mean) == want[-1]


def test_a_version_whose_factors_are_not_its_rating_keeps_the_saved_model(version_dir, tmp_path):
    copy = tmp_path / "1"
    shutil.copytree(version_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["recommend"]["score"] = "dot"  # as an MLP's embeddings
    manifest["recommend_by_rating"] = None
    (copy / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_version(copy, predict_from="factors")
    assert loaded.predict_from == "savedmodel" and loaded.saved_model is not None


SERVE_FROM_FACTORS = textwrap.dedent(
    """
    import json, os, sys
    from fastapi.testclient import TestClient
    from app.main import create_app
    from app.settings import Settings

    settings = Settings(models_dir=sys.argv[1], model_name=sys.argv[2], store_url=sys.argv[3],
                        predict_from="factors", tf_threads=1)
    with TestClient(create_app(settings)) as client:
        user, item = sys.argv[4], sys.argv[5]
        body = {"instances": [{"user_id": user, "item_id": item},
                              {"user_id": sys.argv[6], "item_id": item}]}
        predicted = client.post("/predict", json=body).json()
        top = client.get(f"/recommend/{user}?n=3").json()
        like = client.get(f"/similar/{item}?n=3").json()
        client.post("/events", json={"events": [{"user_id": "new", "item_id": item,
                                                 "rating": 5}]})
        folded = client.post("/predict", json={"instances": [{"user_id": "new",
                                                              "item_id": item}]}).json()
    print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "predicted": predicted,
                      "top": len(top["items"]), "like": len(like["items"]), "folded": folded,
                      "threads": os.environ.get("TF_NUM_INTRAOP_THREADS")}))
    """
)


def test_a_worker_predicting_from_factors_never_imports_tensorflow(models_dir, version_dir):
    user, other = read_ids(version_dir / "user_ids.json")[:2]
    item = read_ids(version_dir / "item_ids.json")[0]
    args = [str(models_dir), MODEL_NAME, fresh_store_url(), user, item, other]
    done = subprocess.run(
        [sys.executable, "-c", SERVE_FROM_FACTORS, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["tensorflow"] is False
    assert seen["threads"] == "1"  # a fallback to the SavedModel would start TF with it
    assert seen["top"] == 3 and seen["like"] == 3
    want = load_version(version_dir).predict_ratings([user, other], [item, item])
    assert seen["predicted"].get("sources") == ["model", "model"], seen["predicted"]
    np.testing.assert_allclose(seen["predicted"]["predictions"], want, atol=2e-6)
    assert seen["folded"]["sources"] == ["fold_in"]


def test_auto_keeps_the_saved_model_for_small_catalogues_and_the_factors_for_large(
    version_dir, monkeypatch
):
    assert load_version(version_dir, predict_from="auto").predict_from == "savedmodel"
    monkeypatch.setattr("app.serving.loader.FACTORS_FROM_ITEMS", 40)  # the tiny version's size
    large = load_version(version_dir, predict_from="auto")
    assert large.predict_from == "factors" and large.saved_model is None
