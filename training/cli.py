"""`recsys`: fetch data, train and export a version, serve it."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields

from training.config import MODEL_KINDS, OPTIMIZERS, SPLITS

# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA) is not for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RANKING_NAMES = ("precision", "recall", "ndcg", "hit_rate", "map", "coverage")
DATASETS = ("ml-100k", "ml-1m", "ml-20m", "ml-25m", "ml-latest-small")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    fetch = sub.add_parser("fetch", help="download and verify a MovieLens data set")
    fetch.add_argument("dataset", choices=DATASETS)
    fetch.add_argument("--data-dir", default="data")
    fetch.add_argument("--base-url", help="mirror of files.grouplens.org/datasets/movielens")
    fetch.add_argument(
        "--no-fallback",
        action="store_true",
        help="fail instead of using the recbole wheel when the download fails",
    )
    fetch.set_defaults(run=_fetch)

    train = sub.add_parser("train", help="train a model and export it as a new version")
    _add_data_options(train)
    train.add_argument("--name", default="movielens", help="model name (models/<name>/)")
    train.add_argument("--models-dir", default="models")
    _add_config_options(train)
    _add_retrieval_options(train)
    train.set_defaults(run=_train)

    compare = sub.add_parser("compare", help="train a grid of models x optimizers, write a report")
    _add_data_options(compare)
    compare.add_argument(
        "--models", default=",".join(MODEL_KINDS), help="comma-separated (default all)"
    )
    compare.add_argument(
        "--optimizers", default=",".join(OPTIMIZERS), help="comma-separated (default all)"
    )
    compare.add_argument("--epochs", type=int, help="most epochs per run (default 60)")
    compare.add_argument("--seed", type=int, help="split and initialisation seed (default 42)")
    compare.add_argument(
        "--split-by",
        choices=SPLITS,
        default="rating",
        help="hold out a share of all ratings ('rating', default) or of each user's ('user', "
        "RecBole's 8:1:1 protocol)",
    )
    compare.add_argument(
        "--retrieval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train and rank with the retrieval vectors (default on)",
    )
    compare.add_argument("--out", required=True, help="directory for report.md, plots, results")
    compare.set_defaults(run=_compare)

    evaluate = sub.add_parser("evaluate", help="the compare metrics for one exported version")
    evaluate.add_argument("--model-dir", required=True, help="models/<name>/<version>")
    _add_data_options(evaluate, required=False)
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.set_defaults(run=_evaluate)

    prune = sub.add_parser("prune", help="delete all but the newest K versions of a model")
    prune.add_argument("--models-dir", default="models")
    prune.add_argument("--name", default="movielens")
    prune.add_argument("--keep", type=int, required=True, help="how many newest versions to keep")
    prune.set_defaults(run=_prune)

    synth = sub.add_parser(
        "synth", help="write a synthetic data set in ratings.csv/movies.csv form"
    )
    synth.add_argument("--users", type=int, required=True)
    synth.add_argument("--items", type=int, required=True)
    synth.add_argument("--ratings", type=int, required=True)
    synth.add_argument("--factors", type=int, default=8, help="rank of the planted structure")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True, help="directory for ratings.csv and movies.csv")
    synth.set_defaults(run=_synth)

    serve = sub.add_parser("serve", help="serve the newest version over HTTP")
    serve.add_argument("--models-dir")
    serve.add_argument("--name")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(run=_serve)
    return parser


def _add_data_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--dataset", choices=DATASETS, help="a data set `recsys fetch` fetched")
    source.add_argument(
        "--ratings",
        help="ratings file: ratings.csv (userId,movieId,rating[,timestamp]), u.data, "
        "ratings.dat, .inter or edited_rating.csv",
    )
    parser.add_argument(
        "--items", help="items file: movies.csv (movieId,title,genres), u.item, movies.dat or .item"
    )
    parser.add_argument("--data-dir", default="data")
    parser.add_argument(
        "--rating-scale",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="refuse ratings outside LOW..HIGH, with their line numbers (a --dataset's "
        "published scale is checked without it: 1-5, or 0.5-5 from ml-20m on)",
    )


def _load_data(args: argparse.Namespace):
    """Read the ratings the flags name, before any TensorFlow import, so a bad file fails fast."""
    from training.data.loaders import load_dataset, load_files

    scale = tuple(args.rating_scale) if args.rating_scale else None
    if scale is not None and not 0 <= scale[0] < scale[1]:
        raise ValueError(f"--rating-scale {scale[0]:g} {scale[1]:g}: need 0 <= LOW < HIGH")
    if args.dataset:
        return load_dataset(args.dataset, args.data_dir, scale)
    return load_files(args.ratings, args.items, scale)


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; unset flags take the chosen model's tuned default."""
    from training.config import TrainConfig

    names = {"model": "--model", "learning_rate": "--lr"}
    choices = {
        "model": MODEL_KINDS,
        "optimizer": OPTIMIZERS,
        "regularization": ("example", "table"),
        "split_by": SPLITS,
    }
    helps = {
        "model": "architecture (default mf_bias)",
        "factors": "embedding size K",
        "l2": "L2 weight on the embeddings",
        "bias_l2": "L2 weight on the biases",
        "regularization": "'example' (rows looked up) or 'table' (Keras regularizer)",
        "init_std": "standard deviation of the initial embeddings",
        "dropout": "dropout after hidden layers (dnn, wide, residual)",
        "dense_l2": "L2 weight on the dense layers' kernels (dnn, wide, residual)",
        "optimizer": "adam, rmsprop or sgd (SGD with momentum 0.9)",
        "learning_rate": "learning rate (default: tuned per model and optimizer)",
        "epochs": "most epochs (early stopping may stop sooner)",
        "patience": "epochs without validation gain before stopping",
        "refit": "after early stopping, refit on train+validation for the chosen epochs",
        "validation": "validation fraction",
        "test": "test fraction",
        "split_by": "hold out a share of all ratings ('rating') or of each user's ('user', "
        "RecBole's protocol)",
    }
    for f in fields(TrainConfig):
        default = "" if f.name in ("model", "learning_rate") else f" (mf_bias: {f.default})"
        if isinstance(f.default, bool):
            parser.add_argument(
                "--" + f.name.replace("_", "-"),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=helps[f.name] + default,
            )
            continue
        parser.add_argument(
            names.get(f.name, "--" + f.name.replace("_", "-")),
            dest=f.name,
            type=type(f.default),
            choices=choices.get(f.name),
            default=None,
            help=helps.get(f.name, f.name.replace("_", " ")) + default,
        )


def _add_retrieval_options(parser: argparse.ArgumentParser) -> None:
    """--retrieval/--no-retrieval and the retrieval model's own settings."""
    from training.config import RetrievalConfig

    defaults = RetrievalConfig()
    parser.add_argument(
        "--retrieval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train the top-N vectors /recommend ranks with (default on)",
    )
    parser.add_argument(
        "--positive-from",
        type=_threshold,
        default=defaults.positive_from,
        help="ratings at or above this are top-N positives, 'all' for every rating "
        f"(default {'all' if defaults.positive_from is None else defaults.positive_from})",
    )
    parser.add_argument(
        "--retrieval-weighting",
        choices=("none", "rating"),
        default=defaults.weighting,
        help="'rating': weight each positive by its rating over the mean rating "
        f"(default {defaults.weighting})",
    )
    for name in ("factors", "l2", "learning_rate", "epochs", "batch_users"):
        default = getattr(defaults, name)
        parser.add_argument(
            f"--retrieval-{name.replace('_', '-')}",
            type=type(default),
            default=default,
            help=f"retrieval {name.replace('_', ' ')} (default {default})",
        )


def _threshold(text: str) -> float | None:
    return None if text == "all" else float(text)


def retrieval_config_from_args(args: argparse.Namespace):
    from training.config import RetrievalConfig

    return RetrievalConfig(
        factors=args.retrieval_factors,
        l2=args.retrieval_l2,
        learning_rate=args.retrieval_learning_rate,
        epochs=args.retrieval_epochs,
        batch_users=args.retrieval_batch_users,
        positive_from=args.positive_from,
        weighting=args.retrieval_weighting,
        seed=args.seed or RetrievalConfig.seed,
    )


def config_from_args(args: argparse.Namespace):
    """The TrainConfig the flags ask for: the model's tuned defaults, then the flags given."""
    from training.config import TrainConfig

    options = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    return TrainConfig.for_model(options.pop("model") or "mf_bias", **options)


def _fetch(args: argparse.Namespace) -> int:
    from training.data.fetch import GROUPLENS_URL, FetchError, fetch

    try:
        result = fetch(
            args.dataset,
            args.data_dir,
            base_url=args.base_url or GROUPLENS_URL,
            fallback=not args.no_fallback,
        )
    except FetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.dataset} in {result.path}; source: {result.source}")
    return 0


def _train(args: argparse.Namespace) -> int:
    data = _load_data(args)
    from training.export import export_version
    from training.train import train

    trained = train(data, config_from_args(args))
    retrieval = None
    if args.retrieval:
        from training.retrieval import train_retrieval

        retrieval = train_retrieval(
            trained.split,
            trained.users,
            trained.items,
            retrieval_config_from_args(args),
            refit=trained.refitted,
        )
    path = export_version(trained, args.models_dir, args.name, data.ratings, data.items, retrieval)
    print(f"exported {args.name} version {path.name} to {path}")
    for part, m in trained.metrics.items():
        print(f"{part:>10}: RMSE {m['rmse']:.4f}  MAE {m['mae']:.4f}  ({m['count']:,} ratings)")
    if retrieval is not None:
        for part, m in retrieval.metrics.items():
            print(
                f"{part:>10}: top-10 from the retrieval vectors: NDCG {m['ndcg']:.4f}  "
                f"recall {m['recall']:.4f}  precision {m['precision']:.4f}"
            )
    return 0


def _compare(args: argparse.Namespace) -> int:
    data = _load_data(args)
    models, optimizers = args.models.split(","), args.optimizers.split(",")
    for name, chosen, known in (
        ("model", models, MODEL_KINDS),
        ("optimizer", optimizers, OPTIMIZERS),
    ):
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise ValueError(f"unknown {name}s {unknown}; choose from {', '.join(known)}")
    from training.compare import compare
    from training.config import RetrievalConfig
    from training.report import write_report

    results = compare(
        data,
        models,
        optimizers,
        epochs=args.epochs,
        seed=args.seed,
        split_by=args.split_by,
        retrieval=RetrievalConfig(seed=args.seed or RetrievalConfig.seed)
        if args.retrieval
        else None,
    )
    print(f"report: {write_report(results, args.out)}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    version = Path(args.model_dir)
    manifest_path = version / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: missing; is {version} an exported version?")
    if args.dataset or args.ratings:
        data = _load_data(args)
    else:
        from artifact.manifest import read_manifest
        from training.data.loaders import load_files

        source = read_manifest(version).training.get("data_source", "")
        if not source:
            raise ValueError("the manifest names no data source: pass --dataset or --ratings")
        data = load_files(source)
    from training.evaluate import evaluate_version

    figures = evaluate_version(version, data)
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    _print_evaluation(version, data.source, figures)
    return 0


def _print_evaluation(version, source: str, figures: dict) -> None:
    counts, k = figures["counts"], figures["k"]
    print(
        f"{version} on {source}: {counts['train']:,} / {counts['validation']:,} / "
        f"{counts['test']:,} ratings (train / validation / test)"
    )
    if not figures["split_matches_manifest"]:
        print("warning: this split's sizes differ from the manifest's: not the training data?")
    t = figures["test"]
    print(f"test: RMSE {t['rmse']:.4f}  MAE {t['mae']:.4f}  MSE {t['mse']:.4f}  ({t['count']:,})")
    rows = (
        ("by predicted rating", "by_rating"),
        (f"by /recommend's: {figures['recommend_source']}", "by_recommend_vectors"),
        ("popularity baseline", "popularity"),
    )
    for title, relevance in (
        ("relevant = test ratings >= 4", "ranking"),
        ("every held-out rating relevant (RecBole's)", "ranking_all"),
    ):
        print(f"top-{k}, {title}:")
        print(f"{'':<28}" + "".join(f"{n:>10}" for n in RANKING_NAMES))
        for label, key in rows:
            r = figures[key][relevance]
            print(f"  {label:<26}" + "".join(f"{r[m]:>10.4f}" for m in RANKING_NAMES))
    c, m = figures["confusion"], figures["confusion"]["matrix"]
    print(
        f"liked above {c['threshold']:.3f}: TP {m['liked']['liked']:,}  "
        f"FN {m['liked']['not_liked']:,}  FP {m['not_liked']['liked']:,}  "
        f"TN {m['not_liked']['not_liked']:,}  precision {c['precision']:.4f}  "
        f"recall {c['recall']:.4f}  F1 {c['f1']:.4f}"
    )


def _synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.data.synthetic import synthetic_ratings

    ratings, items = synthetic_ratings(
        args.users, args.items, args.ratings, factors=args.factors, seed=args.seed, half_stars=True
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ratings.rename(columns={"user_id": "userId", "item_id": "movieId"}).to_csv(
        out / "ratings.csv", index=False
    )
    movies = items.assign(genres=items["genres"].map("|".join))
    movies.rename(columns={"item_id": "movieId"}).to_csv(out / "movies.csv", index=False)
    print(
        f"{len(ratings):,} ratings by {ratings['user_id'].nunique():,} users of "
        f"{ratings['item_id'].nunique():,} items in {out / 'ratings.csv'} and movies.csv"
    )
    return 0


def _prune(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from artifact.layout import list_versions  # what the service counts as a version

    if args.keep < 1:
        raise ValueError("--keep must be at least 1: the newest version is what is served")
    base = Path(args.models_dir) / args.name
    versions = list_versions(base)
    for version in versions[args.keep :]:
        shutil.rmtree(base / str(version))
        print(f"deleted {base / str(version)}")
    print(f"kept {', '.join(str(v) for v in versions[: args.keep]) or 'nothing'} under {base}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    # Flags become RECSYS_* variables so every uvicorn worker process sees the same settings.
    for flag, env in (
        ("models_dir", "MODELS_DIR"),
        ("name", "MODEL_NAME"),
        ("host", "HOST"),
        ("port", "PORT"),
        ("workers", "WORKERS"),
    ):
        if getattr(args, flag) is not None:
            os.environ[f"RECSYS_{env}"] = str(getattr(args, flag))
    from app.__main__ import serve

    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
