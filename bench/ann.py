"""The approximate index against the exact top-N on a 1M-item catalogue, in one run.

Part 1, in process: a synthetic catalogue of 1M items x 64 factors plus biases (`--kind
planted`: items and users drawn around 2,000 planted topics, the structure trained vectors
have; `--kind gaussian`: independent normal vectors, the hardest case for any index). The index
is built as training builds it (`artifact.ann.build`, nprobe chosen on 500 sample users), then
held-out users are ranked both ways, one query at a time with one thread, 100 random seen items
excluded each (as the service does: over-fetch, exact re-score, exclusions, the shared kernel):
recall@10 against exact, and the time per query of each path.

Part 2, over HTTP (`--serve MODELS_DIR NAME`): the service on a version with an index, against
the same version with RECSYS_ANN=false, under wrk (bench/serve.py's driver): requests/s, p50/p99,
start to ready and each worker's RSS and PSS; the index is served once per RECSYS_PREDICT_FROM
in `--predict-from` (default: the SavedModel, then the factors without TensorFlow).

    PYTHONPATH=. .venv/bin/python bench/ann.py [--kind planted|gaussian] [--items 1000000]
    PYTHONPATH=. .venv/bin/python bench/ann.py --serve /tmp/models1m big1m
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from artifact import ann
from artifact.topn import score, top_n


def catalogue(kind: str, items: int, factors: int, users: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    if kind == "planted":
        topics = rng.normal(size=(2000, factors)).astype(np.float32)
        item_vectors = topics[rng.integers(0, 2000, items)]
        item_vectors += 0.7 * rng.normal(size=(items, factors)).astype(np.float32)
        user_vectors = topics[rng.integers(0, 2000, users)]
        user_vectors += 0.7 * rng.normal(size=(users, factors)).astype(np.float32)
    else:
        item_vectors = rng.normal(size=(items, factors)).astype(np.float32)
        user_vectors = rng.normal(size=(users, factors)).astype(np.float32)
    bias = (0.5 * rng.normal(size=items)).astype(np.float32)
    return 0.3 * item_vectors, bias, 0.3 * user_vectors


def in_process(kind: str, items: int, factors: int, queries: int) -> None:
    import faiss

    vectors, bias, users = catalogue(kind, items, factors, 500 + queries)
    started = time.perf_counter()
    index, built = ann.build(vectors, bias, users[:500])
    build_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ann.ANN_FILE
        ann.write(index, path)
        size = path.stat().st_size
        started = time.perf_counter()
        index = ann.load(path, items, factors, built["nprobe"])
        load_seconds = time.perf_counter() - started
    rng = np.random.default_rng(1)
    held_out = users[500:]
    seen = [rng.choice(items, 100, replace=False) for _ in held_out]
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        for u in held_out:  # warm: the index's pages mapped in, as in a serving process
            ann.search(index, u, ann.fetch_size(10, 100))
        started = time.perf_counter()
        exact = [
            top_n(score(u, vectors, bias), 10, s)[0] for u, s in zip(held_out, seen, strict=True)
        ]
        exact_seconds = (time.perf_counter() - started) / len(held_out)
        started = time.perf_counter()
        found = []
        for u, s in zip(held_out, seen, strict=True):
            rows = ann.search(index, u, ann.fetch_size(10, len(s)))
            candidate_scores = vectors[rows] @ u + bias[rows]
            order = np.argsort(rows)
            rows, candidate_scores = rows[order], candidate_scores[order]
            at, _ = top_n(candidate_scores, 10, None, ~np.isin(rows, s))
            found.append(rows[at])
        ann_seconds = (time.perf_counter() - started) / len(held_out)
    recall = ann.recall_at(np.array(found), np.array(exact))
    print(
        json.dumps(
            {
                "catalogue": f"{kind}, {items:,} items x {factors}",
                "index": built["kind"],
                "nprobe": built["nprobe"],
                "build_seconds": round(build_seconds, 1),
                "file_mb": round(size / 2**20, 1),
                "load_seconds": round(load_seconds, 3),
                "held_out_queries": len(held_out),
                "recall_at_10": round(recall, 4),
                "exact_ms": round(exact_seconds * 1e3, 3),
                "ann_ms": round(ann_seconds * 1e3, 3),
                "speedup": round(exact_seconds / ann_seconds, 1),
            },
            indent=1,
        )
    )


TARGET_RSS_MB = 1_024  # issue 27: a 1M-item worker in a gigabyte, ready in 10 s


def over_http(
    models_dir: str, name: str, duration: int, connections: list[int], predict_from: list[str]
) -> None:
    from bench.serve import Server, lua_get_random, memory_mb, wrk

    version = max(int(p.name) for p in (Path(models_dir) / name).iterdir() if p.name.isdigit())
    users = json.loads((Path(models_dir) / name / str(version) / "user_ids.json").read_text())
    rng = np.random.default_rng(1)
    lua = lua_get_random(
        [users[i] for i in rng.integers(0, len(users), 2000)], "/recommend/", "?n=10"
    )
    env = {
        "RECSYS_MODELS_DIR": str(Path(models_dir).resolve()),
        "RECSYS_MODEL_NAME": name,
        "RECSYS_DATA_DIR": tempfile.mkdtemp(prefix="ann-bench-"),
    }
    logs = Path(tempfile.mkdtemp(prefix="ann-bench-logs-"))
    results = {}
    # The index on with each way of answering /predict, then the exact path with the last.
    runs = [(f"ann/{p}", "true", p) for p in predict_from]
    runs.append((f"exact/{predict_from[-1]}", "false", predict_from[-1]))
    for label, use, predict in runs:
        with Server(
            [os.sys.executable, "-m", "app"],
            {**env, "RECSYS_ANN": use, "RECSYS_PREDICT_FROM": predict},
            "/ready",
            logs / f"{label.replace('/', '-')}.log",
        ) as server:
            print(
                f"{label}: start to ready {server.start_to_ready:.2f} s; {server.worker_memory()}"
            )
            for c in connections:
                r = wrk(server.base, c, duration, lua)
                results[(label, c)] = r
                print(
                    f"  {label:<16} c={c:<3} {r['rps']:>8,.0f} req/s  p50 {r['p50']:.2f}  "
                    f"p99 {r['p99']:.2f} ms",
                    flush=True,
                )
            print(f"  after the load: {server.worker_memory()}")
            rss = max(memory_mb(p, "VmRSS:", "status") for p in server.worker_pids())
            for what, value, target in (
                ("RSS per worker", f"{rss:,.0f} MB", rss <= TARGET_RSS_MB),
                ("start to ready", f"{server.start_to_ready:.1f} s", server.start_to_ready <= 10),
            ):
                limit = f"{TARGET_RSS_MB:,} MB" if what.startswith("RSS") else "10 s"
                print(f"  {what} {value}, target <= {limit}: {'met' if target else 'MISSED'}")
    ann_label, exact_label = runs[-2][0], runs[-1][0]
    for c in connections:
        ratio = results[(ann_label, c)]["rps"] / results[(exact_label, c)]["rps"]
        print(f"c={c}: {ann_label} / {exact_label} = {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("planted", "gaussian"), default="planted")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--serve", nargs=2, metavar=("MODELS_DIR", "NAME"))
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", default="1,32")
    parser.add_argument(
        "--predict-from",
        default="savedmodel,factors",
        help="RECSYS_PREDICT_FROM values to serve the index with, in turn (comma-separated)",
    )
    args = parser.parse_args()
    if args.serve:
        connections = [int(c) for c in args.connections.split(",")]
        over_http(*args.serve, args.duration, connections, args.predict_from.split(","))
    else:
        in_process(args.kind, args.items, args.factors, args.queries)


if __name__ == "__main__":
    main()
