"""Training on several machines with TensorFlow's own engine: `TF_CONFIG` names the cluster
and this process's place in it, as for any `tf.distribute` program.

With a cluster of more than one task, `recsys train` runs under `MultiWorkerMirroredStrategy`:
every worker reads the same data, draws the same split and the same permutations (one seed),
takes its own share of every batch (training.loop), and the optimizer sums the gradients
across workers each step, so all of them hold the same weights. The chief (the "chief" task,
else worker 0) alone writes the version; the others stop after training.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cluster:
    """This process's place: `workers` in all, `index` its own, `chief` whether it exports."""

    workers: int
    index: int
    chief: bool


def cluster_from_env(environ: dict[str, str] | None = None) -> Cluster:
    """Read `TF_CONFIG`; one process alone (no TF_CONFIG, or a cluster of one) is its chief.

    Raises:
        ValueError: TF_CONFIG that is not JSON or names no task of its cluster.
    """
    text = (environ if environ is not None else os.environ).get("TF_CONFIG", "")
    if not text.strip():
        return Cluster(1, 0, True)
    try:
        config = json.loads(text)
        cluster, task = config.get("cluster", {}), config.get("task", {})
        kind, index = task["type"], int(task["index"])
        tasks = cluster[kind]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"TF_CONFIG must be JSON with a cluster and this process's task in it "
            f"(type and index), not {text[:200]!r}: {error}"
        ) from None
    if not 0 <= index < len(tasks):
        raise ValueError(f"TF_CONFIG task {kind} {index} is not in its cluster's {len(tasks)}")
    workers = sum(len(cluster.get(k, [])) for k in ("chief", "worker"))
    chief = kind == "chief" or ("chief" not in cluster and kind == "worker" and index == 0)
    return Cluster(workers, index, chief)


def loopback_configs(workers: int) -> list[str]:
    """TF_CONFIG for each of `workers` processes on this machine (free loopback ports): for
    trying a cluster on one machine, as the tests and bench/scale.py do."""
    sockets = [socket.socket() for _ in range(workers)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    return [
        json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        for i in range(workers)
    ]


def strategy_for(cluster: Cluster) -> Any:
    """MultiWorkerMirroredStrategy for a cluster of several workers, else the default."""
    import tensorflow as tf

    if cluster.workers > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()
