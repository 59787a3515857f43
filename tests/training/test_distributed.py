"""`recsys train` on a cluster of two worker processes on this machine (TF_CONFIG, gRPC over
loopback): both finish, the chief alone exports one version, and its figures match the single
process run on the same data and seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.data.synthetic import synthetic_ratings
from training.distribute import Cluster, cluster_from_env, loopback_configs

pytestmark = pytest.mark.integration

TRAIN = [
    "--epochs", "6", "--batch-size", "512", "--no-item-item", "--retrieval-batch-users", "32",
]  # fmt: skip


def recsys_train(
    ratings: Path, models: Path, env: dict[str, str], args: list[str] = TRAIN
) -> subprocess.Popen:
    command = [sys.executable, "-m", "cli", "train", "--ratings", str(ratings)]
    return subprocess.Popen(
        [*command, "--models-dir", str(models), *args],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out[-3000:]
    return out


def metrics(models: Path) -> dict:
    (version,) = (models / "movielens").iterdir()
    return json.loads((version / "manifest.json").read_text())["metrics"]


def ratings_file(tmp_path: Path) -> Path:
    ratings, _ = synthetic_ratings(400, 150, 16000, seed=3, half_stars=True)
    path = tmp_path / "ratings.csv"
    ratings.rename(columns={"user_id": "userId", "item_id": "movieId"}).to_csv(path, index=False)
    return path


def test_two_workers_train_one_version_with_the_single_process_figures(tmp_path):
    path = ratings_file(tmp_path)

    single = finish(recsys_train(path, tmp_path / "single", {}))
    assert "exported movielens version 1" in single

    workers = [
        recsys_train(path, tmp_path / "cluster", {"TF_CONFIG": config})
        for config in loopback_configs(2)
    ]
    chief, other = (finish(w) for w in workers)
    assert "worker 0 of 2 (the chief: it exports)" in chief
    assert "exported movielens version 1" in chief
    assert "nothing exported (the chief exports)" in other
    assert [p.name for p in (tmp_path / "cluster" / "movielens").iterdir()] == ["1"]

    alone, together = metrics(tmp_path / "single"), metrics(tmp_path / "cluster")
    assert together["test"]["rmse"] == pytest.approx(alone["test"]["rmse"], rel=0.01)
    assert together["ranking_test"]["ndcg"] == pytest.approx(
        alone["ranking_test"]["ndcg"], rel=0.01
    )


def alone_and_on_two_workers(tmp_path: Path, args: list[str]) -> tuple[str, str, str]:
    """`recsys train` with `args` in one process (into tmp_path/single), then on two workers
    (tmp_path/cluster); the single run's output, the chief's and the other worker's."""
    path = ratings_file(tmp_path)
    single = finish(recsys_train(path, tmp_path / "single", {}, args))
    workers = [
        recsys_train(path, tmp_path / "cluster", {"TF_CONFIG": config}, args)
        for config in loopback_configs(2)
    ]
    chief, other = (finish(w) for w in workers)
    assert "exported movielens version 1" in chief
    return single, chief, other


def assert_same_arrays(tmp_path: Path, names: tuple[str, ...]) -> None:
    """The cluster exported the single process's arrays: each row is solved by one worker on
    the same inputs and summed with zeros."""
    for name in names:
        one = np.load(next((tmp_path / "single").glob(f"movielens/1/{name}")))
        two = np.load(next((tmp_path / "cluster").glob(f"movielens/1/{name}")))
        assert one.std() > 1e-3  # vectors that rank, not a collapsed solution
        np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-5)


def test_two_workers_share_the_als_passes_and_end_with_the_single_process_tables(tmp_path):
    # With the large-data default's conjugate-gradient steps after the first pass: each worker
    # starts its rows from the tables every worker holds.
    args = ["--solver", "als", "--als-cg-steps", "2", "--epochs", "5", "--no-retrieval",
            "--no-item-item"]  # fmt: skip
    single, chief, other = alone_and_on_two_workers(tmp_path, args)
    assert "alternating least squares" in single
    for place, out in enumerate((chief, other)):
        assert f"worker {place} of 2 solves its share of the chunks" in out
    alone, together = metrics(tmp_path / "single"), metrics(tmp_path / "cluster")
    for part in ("validation", "test"):
        assert together[part]["rmse"] == pytest.approx(alone[part]["rmse"], rel=1e-5)
    assert_same_arrays(tmp_path, ("user_factors.npy", "item_bias.npy"))


def test_two_workers_share_the_retrieval_als_passes_and_end_with_the_single_process_vectors(
    tmp_path,
):
    args = ["--solver", "als", "--epochs", "3", "--retrieval-solver", "als",
            "--retrieval-als-l2", "5", "--no-item-item"]  # fmt: skip
    single, chief, _ = alone_and_on_two_workers(tmp_path, args)
    assert "implicit als" in single and "implicit als" in chief
    alone, together = metrics(tmp_path / "single"), metrics(tmp_path / "cluster")
    assert together["ranking_test"]["ndcg"] == pytest.approx(
        alone["ranking_test"]["ndcg"], rel=1e-4
    )
    assert_same_arrays(tmp_path, ("retrieval_user_factors.npy", "retrieval_item_factors.npy"))


def test_tf_config_names_the_chief_and_is_checked():
    cluster = {"worker": ["a:1", "b:2"]}
    second = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    assert cluster_from_env({"TF_CONFIG": second}).chief is False
    first = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    assert cluster_from_env({"TF_CONFIG": first}).chief is True
    with_chief = {"chief": ["c:3"], **cluster}
    worker = json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})
    assert cluster_from_env({"TF_CONFIG": worker}) == Cluster(workers=3, index=0, chief=False)
    assert cluster_from_env({}).chief is True
    with pytest.raises(ValueError, match="TF_CONFIG must be JSON"):
        cluster_from_env({"TF_CONFIG": "{not json"})
    with pytest.raises(ValueError, match="worker 5 is not in its cluster's 2"):
        bad = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 5}})
        cluster_from_env({"TF_CONFIG": bad})


def test_each_worker_takes_its_own_slice_of_every_batch_chief_first():
    import tensorflow as tf

    from training.loop import worker_slice

    spec = tf.train.ClusterSpec({"chief": ["c:1"], "worker": ["a:1", "b:2"]})

    class ThreeWorkers:  # what worker_slice reads of MultiWorkerMirroredStrategy
        num_replicas_in_sync = 3

        def __init__(self, task_type, task_id):
            self.cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
                spec, task_type=task_type, task_id=task_id
            )

    places = [("chief", 0), ("worker", 0), ("worker", 1)]
    slices = [worker_slice(ThreeWorkers(*place), 96) for place in places]
    assert slices == [(0, 32), (32, 32), (64, 32)]
    with pytest.raises(ValueError, match="batch size 100 is not divisible by the 3 workers"):
        worker_slice(ThreeWorkers("worker", 0), 100)
    assert worker_slice(tf.distribute.get_strategy(), 100) == (0, 100)
