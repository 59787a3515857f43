"""The `recsys` command as a user runs it: train on their own files, then serve over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.helpers import ROOT, free_port
from training.data.synthetic import synthetic_ratings

pytestmark = pytest.mark.integration  # every test here starts a process

RECSYS = [sys.executable, "-m", "cli"]


def run(*args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [*RECSYS, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


@pytest.fixture(scope="module")
def own_files(tmp_path_factory):
    """A user's own ratings.csv (string ids) and movies.csv."""
    folder = tmp_path_factory.mktemp("own")
    ratings, items = synthetic_ratings(n_users=40, n_items=30, n_ratings=700, seed=3)
    ratings["user_id"] = "user-" + ratings["user_id"]
    ratings.rename(columns={"user_id": "userId", "item_id": "movieId"}).to_csv(
        folder / "ratings.csv", index=False
    )
    items.assign(genres=items["genres"].map("|".join)).rename(
        columns={"item_id": "movieId"}
    ).to_csv(folder / "movies.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def trained_dir(own_files, tmp_path_factory):
    models = tmp_path_factory.mktemp("cli-models")
    done = run(
        "train",
        "--ratings",
        str(own_files / "ratings.csv"),
        "--items",
        str(own_files / "movies.csv"),
        "--models-dir",
        str(models),
        "--name",
        "own",
        "--epochs",
        "3",
        "--factors",
        "4",
        "--batch-size",
        "64",
    )
    assert done.returncode == 0, done.stderr
    return models, done.stdout


def test_train_prints_progress_path_and_metrics(trained_dir):
    models, out = trained_dir
    assert "epoch   1/3" in out and "epoch   3/3" in out
    assert f"exported own version 1 to {models / 'own' / '1'}" in out
    assert "validation: RMSE" in out and "test: RMSE" in out
    assert (models / "own" / "1" / "saved_model.pb").is_file()
    # The item-item blend is chosen on validation and exported with the version.
    assert "item-item: strength" in out and "top-10 from the item-item blend" in out
    assert (models / "own" / "1" / "item_item.npy").is_file()


def test_train_reports_a_missing_file_without_a_traceback(tmp_path):
    done = run("train", "--ratings", str(tmp_path / "nope.csv"), "--models-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: ratings file not found: {tmp_path / 'nope.csv'}"
    assert "Traceback" not in done.stderr


def test_train_needs_a_data_source():
    done = run("train")
    assert done.returncode == 2 and "one of the arguments --dataset --ratings" in done.stderr


def test_serve_answers_over_real_http(trained_dir):
    models, _ = trained_dir
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    server = subprocess.Popen(
        [*RECSYS, "serve", "--models-dir", str(models), "--name", "own", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read().decode()
            assert time.monotonic() < deadline, "service not ready within 60 s"
            time.sleep(0.2)
        body = httpx.get(f"{base}/recommend/user-1", params={"n": 3}).json()
        assert body["user_id"] == "user-1" and len(body["items"]) == 3
        assert all(item["title"].startswith("Movie ") for item in body["items"])
        instances = [{"user_id": "user-1", "item_id": body["items"][0]["item_id"]}]
        predicted = httpx.post(f"{base}/predict", json={"instances": instances}).json()
        assert 1.0 <= predicted["predictions"][0] <= 5.0
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_cli_start_up_does_not_import_tensorflow():
    # `recsys fetch`, `--help` and argument errors must not pay TensorFlow's seconds.
    code = (
        "import sys, cli; cli.parser(); "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "[]", done.stderr


def test_compare_refuses_unknown_models_before_training(own_files, tmp_path):
    done = run(
        "compare",
        "--ratings",
        str(own_files / "ratings.csv"),
        "--models",
        "mf,svd",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 2
    kinds = "mf, mf_bias, autorec, dnn, wide, residual"
    assert f"unknown models ['svd']; choose from {kinds}" in done.stderr


def test_evaluate_prints_the_metrics_of_an_exported_version(trained_dir, own_files):
    models, _ = trained_dir
    done = run(
        "evaluate",
        "--model-dir",
        str(models / "own" / "1"),
        "--ratings",
        str(own_files / "ratings.csv"),
    )
    assert done.returncode == 0, done.stderr
    assert "test: RMSE" in done.stdout and "popularity baseline" in done.stdout
    assert "split's sizes differ" not in done.stdout  # the same split as training's
    # The version learned every rating, test included, and the report says so.
    assert "warning: this version was exported on every rating" in done.stdout


def test_evaluate_names_a_directory_that_is_not_a_version(tmp_path):
    done = run("evaluate", "--model-dir", str(tmp_path))
    assert done.returncode == 2
    assert f"{tmp_path / 'manifest.json'}: missing" in done.stderr


def test_synth_writes_movielens_csv_with_half_stars(tmp_path):
    done = run(
        "synth", "--users", "50", "--items", "30", "--ratings", "600", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    from training.data.loaders import load_files

    data = load_files(tmp_path / "ratings.csv", tmp_path / "movies.csv")
    ratings = data.ratings
    assert len(ratings) == 600 and not ratings.duplicated(["user_id", "item_id"]).any()
    assert set(ratings["rating"]) <= {1 + 0.5 * i for i in range(9)}
    assert (ratings["rating"] % 1 == 0.5).any()
    assert len(data.items) == 30 and data.items["genres"].map(len).min() >= 1


def test_retrain_once_publishes_a_candidate_that_passes_and_refuses_one_that_does_not(
    trained_dir, own_files, tmp_path
):
    import json
    import shutil

    import pandas as pd

    from app.events.changes import Rating
    from app.events.store import EventStore
    from tests.helpers import fresh_store_url

    models_src, _ = trained_dir
    models = tmp_path / "models"
    shutil.copytree(models_src / "own", models / "own")
    url = fresh_store_url()
    store = EventStore(url)
    store.open()
    ratings = pd.read_csv(own_files / "ratings.csv").sample(200, random_state=5)
    store.write([
        [Rating(str(r.userId), str(r.movieId), float(r.rating), 2_000_000_000 + k)]
        for k, r in enumerate(ratings.itertuples())
    ])  # fmt: skip
    store.close()
    common = ["retrain", "--once", "--store", url, "--ratings", str(own_files / "ratings.csv"),
              "--models-dir", str(models), "--name", "own", "--factors", "4",
              "--batch-size", "64", "--no-retrieval"]  # fmt: skip
    refused = run(*common, "--epochs", "1", "--lr", "1e-7", "--tolerance", "0")
    assert refused.returncode == 1, refused.stderr
    assert "gate: refused: RMSE" in refused.stdout
    assert sorted(p.name for p in (models / "own").iterdir()) == ["1"]
    passed = run(*common, "--epochs", "3", "--tolerance", "0.5")
    assert passed.returncode == 0, passed.stderr
    assert "gate: passed: not worse beyond 0.5" in passed.stdout
    assert "round written down: passed, published as own version 2 in" in passed.stdout
    manifest = json.loads((models / "own" / "2" / "manifest.json").read_text())
    assert manifest["gate"]["verdict"] == "passed" and manifest["gate"]["baseline_version"] == 1
    bad = run(*common, "--holdout", "1.5")
    assert bad.returncode == 2 and "--holdout 1.5: need a share between 0 and 1" in bad.stderr
