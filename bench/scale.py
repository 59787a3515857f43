"""Scale: training on an ml-20m-shaped data set, side by side with its peers, in one command.

ml-20m has 138,493 users, 26,744 movies and 20,000,263 ratings. Make a data set of that shape
(skewed item popularity, planted rank-8 structure plus noise, half-star ratings) once, then:

    .venv/bin/recsys synth --users 138493 --items 26744 --ratings 20000263 --out data/synth-20m
    PYTHONPATH=. .venv/bin/python bench/scale.py --ratings data/synth-20m/ratings.csv \\
        --items data/synth-20m/movies.csv [--data-dir data] [--parts epochs,train,...]

Parts (all by default), each a row group of the table printed at the end:
- epochs: mf_bias at its large-data settings, 3 epochs: ratings/s and peak RSS; and the same
  loop with Keras' stock Adam for 20 steps (the ratio is what the row-wise update buys).
- train: the default `recsys train` (rating model, retrieval, export) in a fresh process:
  wall seconds, each stage's seconds, peak RSS.
- als: seconds per pass of implicit's ALS (same factors, 2 threads) beside an mf_bias epoch.
- solver: the rating model fitted both ways on one split of the same ratings, the gradient loop
  (Adam, the large-data settings) and `--solver als` (training.als): validation and test RMSE,
  seconds per epoch or pass, seconds to fit; beside implicit's ALS pass on the same ratings.
  `--solver-data ml-1m,ml-100k` adds those data sets (fetched under --data-dir), each at its
  own defaults for both solvers (ml-100k: ALS at l2 0.12, chosen on its validation split).
- passes: ALS with exact solves beside ALS with `--cg-steps` conjugate-gradient steps a row
  (training.als_steps.conjugate_gradient) on one split of the same sets: RMSE, passes, a pass's
  seconds against implicit's ALS pass on the same ratings.
- topn: on a set made with `recsys synth --tastes 30` (planted tastes decide which films each
  user rates; the plain set cannot tell a ranking from popularity), NDCG@10 on the split and
  protocol `recsys train` uses, of popularity and of implicit's ALS (its regularisation and
  confidence chosen on validation, 64 factors, 15 iterations), beside the `train` part's
  retrieval vectors (what /recommend serves at 27k items).
- retrieval: the retrieval vectors fitted both ways on the split `recsys train` uses: the
  softmax and implicit ALS (training.als_implicit; alpha and l2 chosen on validation from
  --als-grid), test NDCG@10 of each beside popularity, seconds to fit.
- surprise: ml-100k, ratings/s of mf_bias's epochs (batch 256) beside scikit-surprise's SVD.
- ml100k: the default `recsys train` on ml-100k: wall seconds, test RMSE, NDCG@10.
- load: `load_files` of the ratings (and items), the integer-id read beside the text read it
  replaced for plain integer ids (training.data.integer_ids), alternated, best of 3 each, and
  whether the two frames are equal.
- cluster: `recsys train` on 1M synthetic ratings, one process vs two workers on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROWS: list[tuple[str, str]] = []


def row(name: str, figure: str) -> None:
    ROWS.append((name, figure))
    print(f"{name}: {figure}", flush=True)


def target(what: str, met: bool) -> str:
    """Issue 27's target beside a figure: `; target <what>: met` (or missed)."""
    return f"; target {what}: " + ("met" if met else "missed")


def peak_rss_gb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024**2  # KiB on Linux


def recsys(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(process: subprocess.Popen) -> str:
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"recsys failed ({process.returncode}):\n{out[-3000:]}")
    return out


def manifest_metrics(models: Path) -> dict:
    version = max((p for p in models.glob("*/*") if p.name.isdigit()), key=lambda p: int(p.name))
    return json.loads((version / "manifest.json").read_text())["metrics"]


def epochs_part(ratings: str, items: str | None) -> None:
    import keras
    import numpy as np

    from training.config import TrainConfig
    from training.data.loaders import load_files
    from training.data.split import make_split
    from training.fitting import fit_once
    from training.loop import Arrays, LoopSettings, fit_rating_model
    from training.rating import RatingLearner

    started = time.perf_counter()
    data = load_files(ratings, items)
    split = make_split(data.ratings, 0.1, 0.1, 42, "rating")
    row("load + split (pandas, string ids)", f"{time.perf_counter() - started:.0f} s")
    config = TrainConfig.for_model("mf_bias", len(data.ratings), epochs=3, refit=False)
    learner = RatingLearner(config, (0.5, 5.0))
    fit = fit_once(learner, split.train, 3, None, print)
    seconds = float(np.median(fit.history["epoch_seconds"]))
    rate = len(split.train) / seconds
    row(
        f"mf_bias epoch, batch {config.batch_size}, RowAdam (median of 3)",
        f"{seconds:.1f} s, **{rate:,.0f} ratings/s**",
    )
    row("peak RSS after the epochs", f"{peak_rss_gb():.1f} GB")
    # The same loop, the same model, Keras' own Adam: 20 steps on the same tables.
    model = fit.model
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    model.optimizer.build(model.trainable_variables)
    users, items_ = fit.users, fit.items
    part = split.train.iloc[: 20 * config.batch_size]
    arrays = Arrays(
        users.lookup(part["user_id"]),
        items_.lookup(part["item_id"]),
        part["rating"].to_numpy(np.float32),
    )
    settings = LoopSettings(config.batch_size, 2, 3, 0)
    history, _ = fit_rating_model(model, arrays, None, settings, print)
    stock = len(arrays) / history["epoch_seconds"][-1]
    row("the same loop with Keras' stock Adam (20 steps)", f"{stock:,.0f} ratings/s")
    row("row-wise / stock", f"**{rate / stock:.1f}x**")


def train_part(ratings: str, items: str | None) -> None:
    with tempfile.TemporaryDirectory() as models:
        args = ["train", "--ratings", ratings, "--models-dir", models]
        started = time.perf_counter()
        out = finished(recsys(*args, *(["--items", items] if items else [])))
        wall = time.perf_counter() - started
        stages = re.search(r"stages: (.*)", out)
        loaded = re.search(r"loaded .* in (\d+) s", out)
        row(
            "default `recsys train`, wall (fresh process)",
            f"**{wall / 60:.1f} min**" + target("<= 5 min", wall <= 300),
        )
        row("  stages", f"load {loaded.group(1) if loaded else '?'} s, {stages.group(1)}")
        peak = peak_rss_gb(resource.RUSAGE_CHILDREN)
        row("  peak RSS", f"**{peak:.1f} GB**" + target("<= 8 GB", peak <= 8))
        metrics = manifest_metrics(Path(models))
        row(
            "  test RMSE / retrieval NDCG@10 / popularity NDCG@10 (synthetic)",
            f"{metrics['test']['rmse']:.4f} / {metrics['ranking_test']['ndcg']:.4f} / "
            f"{metrics.get('ranking_popularity_test', {}).get('ndcg', float('nan')):.4f}",
        )
        last = {}
        for line in out.splitlines():
            if line.startswith("epoch") or line.startswith("retrieval epoch"):
                last[line.split("epoch")[0]] = line
        row("  the rating model's last epoch or pass", last.get("", "?"))
        row("  the retrieval's last epoch", last.get("retrieval ", "?"))


def als_part(ratings: str) -> None:
    import pandas as pd

    frame = pd.read_csv(ratings, usecols=[0, 1, 2])
    frame.columns = ["user_id", "item_id", "rating"]
    row(
        "implicit ALS, 64 factors, 2 threads: seconds per pass (every rating)",
        f"{implicit_pass_seconds(frame):.1f} s",
    )


def implicit_pass_seconds(frame) -> float:
    """Seconds per pass of implicit's ALS, 64 factors, 2 threads, on these ratings."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    users, _ = pd.factorize(frame["user_id"])
    items, _ = pd.factorize(frame["item_id"])
    matrix = sp.csr_matrix(
        (frame["rating"].to_numpy(np.float32), (users, items)),
        shape=(users.max() + 1, items.max() + 1),
    )
    model = AlternatingLeastSquares(factors=64, iterations=3, num_threads=2, random_state=0)
    started = time.perf_counter()
    with threadpool_limits(1, "blas"):
        model.fit(matrix, show_progress=False)
    return (time.perf_counter() - started) / 3


def data_sets(ratings: str, items: str | None, data_dir: str, extra: list[str]) -> list:
    """(label, a loader, the ALS options of that set) for the ratings given and `extra`."""
    from training.data.loaders import load_dataset, load_files

    sets = [("ratings given", lambda: load_files(ratings, items), {})]
    for name in extra:
        sets.append((name, lambda name=name: load_dataset(name, data_dir),
                     {"l2": 0.12} if name == "ml-100k" else {}))  # fmt: skip
    return sets


def solver_part(ratings: str, items: str | None, data_dir: str, extra: list[str]) -> None:
    import numpy as np

    from training.config import TrainConfig
    from training.rating import train_rating

    for label, load, als_options in data_sets(ratings, items, data_dir, extra):
        data = load()
        n = len(data.ratings)
        figures = {}
        for solver, options in (("gradient", {}), ("als", als_options)):
            config = TrainConfig.for_model("mf_bias", n, solver=solver, refit=False, **options)
            trained = train_rating(data, config, log=lambda line: None)
            seconds = trained.history["epoch_seconds"]
            figures[solver] = trained
            detail = (
                f"batch {config.batch_size}, lr {config.learning_rate:g}"
                if solver == "gradient"
                else f"l2 {config.l2:g}"
            )
            row(
                f"{label} ({n:,} ratings), mf_bias {solver} ({detail}): validation / test RMSE",
                f"**{trained.metrics['validation']['rmse']:.4f}** / "
                f"{trained.metrics['test']['rmse']:.4f}, best {trained.best_epoch} of "
                f"{len(seconds)} (cap {config.epochs}), {float(np.median(seconds)):.1f} s each, "
                f"fit {sum(seconds):.0f} s",
            )
        gradient, als = figures["gradient"], figures["als"]
        worse = als.metrics["test"]["rmse"] - gradient.metrics["test"]["rmse"]
        row(
            f"{label}: ALS / gradient, seconds to fit; test RMSE difference",
            f"**{sum(als.history['epoch_seconds']) / sum(gradient.history['epoch_seconds']):.2f}x**"
            f"; {worse:+.4f}" + target("no worse than the gradient loop", worse <= 0),
        )
        theirs = implicit_pass_seconds(data.ratings)
        ours = float(np.median(als.history["epoch_seconds"]))
        steps = als.config.als_cg_steps
        row(
            f"{label}: our ALS pass (explicit; conjugate-gradient steps: {steps}) / implicit's "
            "ALS pass (64 factors)",
            f"{ours:.2f} s / {theirs:.2f} s = **{ours / theirs:.2f}x**"
            + target("<= implicit's", ours <= theirs),
        )


def passes_part(ratings: str, items: str | None, data_dir: str, extra: list[str],
                steps: list[int]) -> None:  # fmt: skip
    """ALS with exact solves beside ALS with each count of conjugate-gradient steps, on one
    split of each set, and implicit's ALS pass on the same ratings: the passes' seconds
    (median, after the first, which is exact either way) and the RMSE each reaches."""
    import numpy as np

    from training.config import TrainConfig
    from training.rating import train_rating

    for label, load, als_options in data_sets(ratings, items, data_dir, extra):
        data = load()
        n = len(data.ratings)
        theirs = implicit_pass_seconds(data.ratings)
        exact = None
        for count in [0, *steps]:
            options = {**als_options, "als_cg_steps": count}
            config = TrainConfig.for_model("mf_bias", n, solver="als", refit=False, **options)
            trained = train_rating(data, config, log=lambda line: None)
            seconds = trained.history["epoch_seconds"]
            pass_seconds = float(np.median(seconds[1:] if len(seconds) > 1 else seconds))
            exact = pass_seconds if count == 0 else exact
            how = "exact solves" if count == 0 else f"{count} conjugate-gradient steps"
            row(
                f"{label} ({n:,} ratings), ALS, {how}: validation / test RMSE; passes; a pass",
                f"**{trained.metrics['validation']['rmse']:.4f}** / "
                f"{trained.metrics['test']['rmse']:.4f}; best {trained.best_epoch} of "
                f"{len(seconds)}; {pass_seconds:.2f} s (**{pass_seconds / theirs:.2f}x** "
                f"implicit's {theirs:.2f} s, {pass_seconds / exact:.2f}x exact), fit "
                f"{sum(seconds):.0f} s" + target("a pass <= implicit's", pass_seconds <= theirs),
            )


def topn_part(ratings: str, items: str | None) -> None:
    import numpy as np
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from training.data.loaders import load_files
    from training.data.split import IdIndex, make_split
    from training.evaluation.ranking import factor_scores, popularity_scores, ranking_metrics

    split = make_split(load_files(ratings, items).ratings, 0.1, 0.1, 42, "rating")
    train = split.train
    users, films = IdIndex.from_column(train["user_id"]), IdIndex.from_column(train["item_id"])
    matrix = sp.csr_matrix(
        (np.ones(len(train), np.float32), (users.lookup(train["user_id"]),
                                            films.lookup(train["item_id"]))),
        shape=(len(users), len(films)),
    )  # fmt: skip

    def fit(regularization: float, alpha: float):
        model = AlternatingLeastSquares(
            factors=64, regularization=regularization, alpha=alpha, iterations=15,
            num_threads=2, random_state=0,
        )  # fmt: skip
        with threadpool_limits(1, "blas"):
            model.fit(matrix, show_progress=False)
        return factor_scores(np.asarray(model.user_factors), np.asarray(model.item_factors))

    best, best_ndcg = None, -1.0
    for regularization in (0.01, 0.1, 1.0):
        for alpha in (1.0, 10.0):
            started = time.perf_counter()
            scores = fit(regularization, alpha)
            ndcg = ranking_metrics(scores, users, films, train, split.validation, k=10,
                                   max_users=5000)["ndcg"]  # fmt: skip
            seconds = time.perf_counter() - started
            print(f"implicit ALS regularization {regularization:g} alpha {alpha:g}: validation "
                  f"NDCG@10 {ndcg:.4f} ({seconds:.0f} s)", flush=True)  # fmt: skip
            if ndcg > best_ndcg:
                best, best_ndcg = (regularization, alpha, scores), ndcg
    regularization, alpha, scores = best
    test = ranking_metrics(scores, users, films, train, split.test, k=10)
    floor = ranking_metrics(popularity_scores(films, train), users, films, train, split.test, k=10)
    row("planted set: popularity, test NDCG@10 (every test user)", f"{floor['ndcg']:.4f}")
    row(
        f"planted set: implicit ALS (regularization {regularization:g}, alpha {alpha:g}, chosen "
        "on validation), test NDCG@10",
        f"**{test['ndcg']:.4f}** ({test['ndcg'] / floor['ndcg']:.2f}x popularity)",
    )


def retrieval_part(ratings: str, items: str | None, grid: str) -> None:
    """The retrieval vectors both ways on one split (`recsys train`'s, no refit): the softmax
    (sampled over 10,000 items) and implicit ALS with alpha and l2 chosen on validation NDCG@10
    from `grid` ("alpha:l2,..."); test NDCG@10 of each beside popularity, seconds to fit."""
    from training.config import RetrievalConfig
    from training.data.loaders import load_files
    from training.data.split import make_split
    from training.retrieval import train_retrieval

    split = make_split(load_files(ratings, items).ratings, 0.1, 0.1, 42, "rating")
    quiet = lambda *_: None  # noqa: E731
    fitted = []
    for pair in grid.split(","):
        alpha, l2 = (float(x) for x in pair.split(":"))
        config = RetrievalConfig(solver="als", alpha=alpha, als_l2=l2, epochs=20)
        started = time.perf_counter()
        result = train_retrieval(split, config, refit=False, log=quiet)
        seconds = time.perf_counter() - started
        print(f"ALS alpha {alpha:g} l2 {l2:g}: validation NDCG@10 "
              f"{result.metrics['validation']['ndcg']:.4f}, best pass {result.best_epoch} of "
              f"{len(result.history['loss'])}, {seconds:.0f} s", flush=True)  # fmt: skip
        fitted.append((result.metrics["validation"]["ndcg"], alpha, l2, result, seconds))
    _, alpha, l2, als, als_seconds = max(fitted, key=lambda f: f[0])
    started = time.perf_counter()
    softmax = train_retrieval(split, RetrievalConfig(solver="softmax"), refit=False, log=quiet)
    softmax_seconds = time.perf_counter() - started
    floor = als.metrics["popularity_test"]["ndcg"]
    row("retrieval: popularity, test NDCG@10", f"{floor:.4f}")
    for label, result, seconds in (
        ("softmax (the former default)", softmax, softmax_seconds),
        (f"implicit ALS (alpha {alpha:g}, l2 {l2:g}, chosen on validation)", als, als_seconds),
    ):
        test = result.metrics["test"]["ndcg"]
        row(
            f"retrieval: {label}, validation / test NDCG@10, epochs or passes (best / run), fit",
            f"{result.metrics['validation']['ndcg']:.4f} / **{test:.4f}** ({test / floor:.2f}x "
            f"popularity), {result.best_epoch} / {len(result.history['loss'])}, {seconds:.0f} s",
        )


def surprise_part(data_dir: str) -> None:
    import numpy as np
    from surprise import SVD, Dataset, Reader

    from training.config import TrainConfig
    from training.data.loaders import load_dataset
    from training.data.split import make_split
    from training.fitting import fit_once
    from training.rating import RatingLearner

    data = load_dataset("ml-100k", data_dir)
    split = make_split(data.ratings, 0.1, 0.1, 42, "rating")
    config = TrainConfig.for_model("mf_bias", len(data.ratings), epochs=20, refit=False)
    fit = fit_once(RatingLearner(config, (1.0, 5.0)), split.train, 20, None, lambda *_: None)
    ours = len(split.train) / float(np.median(fit.history["epoch_seconds"]))
    frame = split.train[["user_id", "item_id", "rating"]]
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = SVD(n_factors=64, n_epochs=20, random_state=0)
    started = time.perf_counter()
    algo.fit(trainset)
    theirs = len(split.train) * 20 / (time.perf_counter() - started)
    row("ml-100k mf_bias, batch 256 (median epoch)", f"{ours:,.0f} ratings/s")
    row("ml-100k scikit-surprise SVD, 64 factors (Cython SGD)", f"{theirs:,.0f} ratings/s")
    row("ours / surprise", f"**{ours / theirs:.2f}x**")


def ml100k_part(data_dir: str) -> None:
    with tempfile.TemporaryDirectory() as models:
        started = time.perf_counter()
        finished(recsys("train", "--dataset", "ml-100k", "--data-dir", data_dir,
                        "--models-dir", models))  # fmt: skip
        wall = time.perf_counter() - started
        metrics = manifest_metrics(Path(models))
    row("ml-100k default `recsys train`, wall (fresh process)", f"**{wall:.1f} s**")
    row(
        "ml-100k mf_bias test RMSE / retrieval test NDCG@10",
        f"**{metrics['test']['rmse']:.4f}** / {metrics['ranking_test']['ndcg']:.4f}"
        + target("RMSE <= 0.912", metrics["test"]["rmse"] <= 0.912),
    )


def cluster_part() -> None:
    from training.data.synthetic import synthetic_ratings
    from training.distribute import loopback_configs

    with tempfile.TemporaryDirectory() as tmp:
        ratings, _ = synthetic_ratings(20000, 3000, 1_000_000, seed=1, half_stars=True)
        path = Path(tmp) / "ratings.csv"
        ratings.rename(columns={"user_id": "userId", "item_id": "movieId"}).to_csv(
            path, index=False
        )
        args = ["train", "--ratings", str(path), "--epochs", "3", "--no-item-item"]
        started = time.perf_counter()
        finished(recsys(*args, "--models-dir", f"{tmp}/one"))
        alone = time.perf_counter() - started
        started = time.perf_counter()
        workers = [
            recsys(*args, "--models-dir", f"{tmp}/two", env={"TF_CONFIG": config})
            for config in loopback_configs(2)
        ]
        for worker in workers:
            finished(worker)
        together = time.perf_counter() - started
        one, two = manifest_metrics(Path(tmp, "one")), manifest_metrics(Path(tmp, "two"))
    row("1M ratings, 3 epochs each: one process, wall", f"{alone:.0f} s")
    row("the same, two workers on loopback (same 2 cores)", f"{together:.0f} s")
    row("two workers / one", f"{together / alone:.2f}x")
    row(
        "test RMSE / NDCG@10, one vs two",
        f"{one['test']['rmse']:.4f} / {one['ranking_test']['ndcg']:.4f} vs "
        f"{two['test']['rmse']:.4f} / {two['ranking_test']['ndcg']:.4f}",
    )


def load_part(ratings: str, items: str | None) -> None:
    import gc

    import pandas as pd

    from training.data import formats
    from training.data.loaders import load_files

    def text_read(*args):
        return None

    fast = formats.read_integer_ids
    seconds: dict[str, list[float]] = {"integer": [], "text": []}
    frames = {}
    for _ in range(3):
        for way, reader in (("integer", fast), ("text", text_read)):
            formats.read_integer_ids = reader
            frames.pop(way, None)
            gc.collect()
            started = time.perf_counter()
            frames[way] = load_files(ratings, items).ratings
            seconds[way].append(time.perf_counter() - started)
    formats.read_integer_ids = fast
    integer, text = min(seconds["integer"]), min(seconds["text"])
    rows = len(frames["integer"])
    row(
        f"loading {rows:,} ratings (`load_files`, best of 3): integer ids / text ids",
        f"**{integer:.1f} s** / {text:.1f} s ({integer / text:.2f}x)"
        + target("<= 15 s", integer <= 15),
    )
    try:
        pd.testing.assert_frame_equal(frames["integer"], frames["text"])
        row("  the two frames", "equal")
    except AssertionError as error:
        row("  the two frames", f"DIFFER: {str(error)[:200]}")


PARTS = (
    "load", "epochs", "train", "topn", "retrieval", "als", "solver", "passes", "surprise",
    "ml100k", "cluster",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", required=True, help="the ml-20m-shaped ratings.csv")
    parser.add_argument("--items")
    parser.add_argument("--data-dir", default="data", help="where ml-100k was fetched")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument(
        "--solver-data", default="", help="data sets the solver part adds (ml-1m,ml-100k)"
    )
    parser.add_argument(
        "--als-grid",
        default="1:30,1:100,1:200,3:100",
        help="the retrieval part's ALS grid, alpha:l2 pairs chosen from on validation",
    )
    parser.add_argument(
        "--cg-steps", default="2,3", help="the passes part's conjugate-gradient step counts"
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if "load" in parts:
        load_part(args.ratings, args.items)
    if "surprise" in parts:
        surprise_part(args.data_dir)
    if "ml100k" in parts:
        ml100k_part(args.data_dir)
    if "cluster" in parts:
        cluster_part()
    if "als" in parts:
        als_part(args.ratings)
    if "solver" in parts:
        extra = [name for name in args.solver_data.split(",") if name]
        solver_part(args.ratings, args.items, args.data_dir, extra)
    if "passes" in parts:
        extra = [name for name in args.solver_data.split(",") if name]
        steps = [int(count) for count in args.cg_steps.split(",") if count]
        passes_part(args.ratings, args.items, args.data_dir, extra, steps)
    if "train" in parts:
        train_part(args.ratings, args.items)
    if "topn" in parts:
        topn_part(args.ratings, args.items)
    if "retrieval" in parts:
        retrieval_part(args.ratings, args.items, args.als_grid)
    if "epochs" in parts:
        epochs_part(args.ratings, args.items)
    print("\n| figure | value |\n|---|---|")
    for name, figure in ROWS:
        print(f"| {name} | {figure} |")


if __name__ == "__main__":
    main()
