"""Options several subcommands share: where the ratings come from, the training configuration
(one flag per TrainConfig field) and the retrieval settings."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import TYPE_CHECKING

from artifact import ann
from training.config import (
    RETRIEVAL_SOLVERS,
    SOLVERS,
    SPLITS,
    ItemItemConfig,
    RankerConfig,
    RetrievalConfig,
    TrainConfig,
)
from training.data.datasets import DATASETS
from training.models.kinds import MODEL_KINDS, OPTIMIZERS

if TYPE_CHECKING:  # pandas is not imported before a command needs it
    from training.data.ratings import RatingsData


def add_data_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
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


def load_data(args: argparse.Namespace) -> RatingsData:
    """Read the ratings the flags name, before any TensorFlow import, so a bad file fails fast."""
    from training.data.loaders import load_dataset, load_files

    scale = (args.rating_scale[0], args.rating_scale[1]) if args.rating_scale else None
    if scale is not None and not 0 <= scale[0] < scale[1]:
        raise ValueError(f"--rating-scale {scale[0]:g} {scale[1]:g}: need 0 <= LOW < HIGH")
    if args.dataset:
        return load_dataset(args.dataset, args.data_dir, scale)
    return load_files(args.ratings, args.items, scale)


CONFIG_HELP = {
    "model": "architecture (default mf_bias)",
    "factors": "embedding size K",
    "l2": "L2 weight on the embeddings",
    "bias_l2": "L2 weight on the biases",
    "regularization": "'example' (rows looked up) or 'table' (Keras regularizer); autorec's is "
    "'sum' (L2 once on the summed error)",
    "init_std": "standard deviation of the initial embeddings",
    "dropout": "dropout after hidden layers (dnn, wide, residual)",
    "dense_l2": "L2 weight on the dense layers' kernels (dnn, wide, residual)",
    "solver": "'gradient' (--optimizer on mini-batches) or 'als' (alternating least squares: "
    "mf and mf_bias)",
    "als_start": "where ALS starts: 'spectral' (the residuals' leading singular vectors) or "
    "'random'",
    "als_cg_steps": "ALS passes after the first: 0 solves every row exactly, n takes n "
    "conjugate-gradient steps from its previous solution",
    "optimizer": "adam, rmsprop or sgd (SGD with momentum 0.9)",
    "learning_rate": "learning rate (default: tuned per model and optimizer)",
    "epochs": "most epochs (early stopping may stop sooner)",
    "patience": "epochs without validation gain before stopping",
    "min_gain": "the least gain that counts, as a share of the best validation loss",
    "refit": "after early stopping, refit on train+validation for the chosen epochs",
    "validation": "validation fraction",
    "test": "test fraction",
    "split_by": "hold out a share of all ratings ('rating'), of each user's ('user', "
    "RecBole's protocol), the newest of all ('time': one cut-off, train on the past, test on "
    "the future) or each user's newest ('user-time')",
}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; unset flags take the chosen model's tuned default."""
    names = {"model": "--model", "learning_rate": "--lr"}
    choices = {
        "model": MODEL_KINDS,
        "optimizer": OPTIMIZERS,
        "regularization": ("example", "table", "sum"),
        "split_by": SPLITS,
        "solver": SOLVERS,
    }
    for f in fields(TrainConfig):
        default = "" if f.name in ("model", "learning_rate") else f" (mf_bias: {f.default})"
        helps = CONFIG_HELP.get(f.name, f.name.replace("_", " ")) + default
        if isinstance(f.default, bool):
            parser.add_argument(
                "--" + f.name.replace("_", "-"),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=helps,
            )
            continue
        parser.add_argument(
            names.get(f.name, "--" + f.name.replace("_", "-")),
            dest=f.name,
            type=type(f.default),
            choices=choices.get(f.name),
            default=None,
            help=helps,
        )


def config_from_args(args: argparse.Namespace, ratings: int | None = None) -> TrainConfig:
    """The TrainConfig the flags ask for: the model's tuned defaults (for `ratings` ratings:
    large data has its own batch size, learning rate, refit and epochs), then the flags given."""
    options = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    return TrainConfig.for_model(options.pop("model") or "mf_bias", ratings, **options)


def add_retrieval_options(parser: argparse.ArgumentParser) -> None:
    """--retrieval/--no-retrieval and the retrieval model's own settings."""
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
    parser.add_argument(
        "--item-item",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also fit item-item weights (EDLAE) blended into /recommend, for catalogues of "
        "at most --item-item-max-items (default on)",
    )
    parser.add_argument(
        "--ranker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also fit a learned second stage that reorders the blend's candidates "
        "(training.ranker; needs the item-item weights and an mf, mf_bias or autorec rating model; "
        "default on)",
    )
    parser.add_argument(
        "--item-item-max-items",
        type=int,
        default=ItemItemConfig.max_items,
        help=f"the largest catalogue that gets item-item weights (default "
        f"{ItemItemConfig.max_items:,}: an items x items float32 matrix, 256 MB at 8,000)",
    )
    parser.add_argument(
        "--ann-min-items",
        type=int,
        default=ann.MIN_ITEMS,
        help="catalogues of at least this many items get an approximate top-N index (faiss) "
        f"that /recommend searches instead of scoring every item (default {ann.MIN_ITEMS:,})",
    )
    parser.add_argument(
        "--retrieval-solver",
        choices=RETRIEVAL_SOLVERS,
        default=defaults.solver,
        help="how the top-N vectors are fitted: 'softmax' (gradient steps), 'als' (implicit-"
        "feedback alternating least squares), or 'auto': ALS over catalogues where the softmax "
        f"would be sampled (over {defaults.sampled_above:,} items) (default {defaults.solver})",
    )
    for name, meaning in (
        ("alpha", "a positive counts 1 + alpha x its weight"),
        ("als_l2", "the L2 weight of every vector"),
    ):
        default = getattr(defaults, name)
        parser.add_argument(
            f"--retrieval-{name.replace('_', '-')}",
            type=float,
            default=default,
            help=f"retrieval ALS: {meaning} (default {default:g})",
        )
    for name in ("factors", "l2", "learning_rate", "epochs", "batch_users"):
        default = getattr(defaults, name)
        parser.add_argument(
            f"--retrieval-{name.replace('_', '-')}",
            type=type(default),
            default=None if name == "epochs" else default,
            help=f"retrieval {name.replace('_', ' ')} (default {default}"
            + ("; at most --epochs when that is given)" if name == "epochs" else ")"),
        )


def retrieval_config_from_args(args: argparse.Namespace) -> RetrievalConfig | None:
    """The RetrievalConfig the flags ask for; None with --no-retrieval."""
    if not args.retrieval:
        return None
    epochs = args.retrieval_epochs or RetrievalConfig.epochs
    if args.retrieval_epochs is None and getattr(args, "epochs", None):
        epochs = min(epochs, args.epochs)  # --epochs limits the whole run
    return RetrievalConfig(
        factors=args.retrieval_factors,
        l2=args.retrieval_l2,
        learning_rate=args.retrieval_learning_rate,
        epochs=epochs,
        batch_users=args.retrieval_batch_users,
        positive_from=args.positive_from,
        weighting=args.retrieval_weighting,
        seed=args.seed or RetrievalConfig.seed,
        solver=args.retrieval_solver,
        alpha=args.retrieval_alpha,
        als_l2=args.retrieval_als_l2,
    )


def item_item_config_from_args(args: argparse.Namespace) -> ItemItemConfig | None:
    """The ItemItemConfig the flags ask for; None with --no-item-item or --no-retrieval."""
    if not args.retrieval or not args.item_item:
        return None
    ranker = RankerConfig() if getattr(args, "ranker", True) else None
    return ItemItemConfig(max_items=args.item_item_max_items, ranker=ranker)


def _threshold(text: str) -> float | None:
    return None if text == "all" else float(text)
