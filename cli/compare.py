"""`recsys compare`: train a grid of models x optimizers on one split, write a report."""

from __future__ import annotations

import argparse

from cli.options import add_data_options, load_data
from training.config import SPLITS, RetrievalConfig
from training.models.kinds import MODEL_KINDS, OPTIMIZERS


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "compare", help="train a grid of models x optimizers, write a report"
    )
    add_data_options(parser)
    parser.add_argument(
        "--models", default=",".join(MODEL_KINDS), help="comma-separated (default all)"
    )
    parser.add_argument(
        "--optimizers", default=",".join(OPTIMIZERS), help="comma-separated (default all)"
    )
    parser.add_argument("--epochs", type=int, help="most epochs per run (default 60)")
    parser.add_argument("--seed", type=int, help="split and initialisation seed (default 42)")
    parser.add_argument(
        "--split-by",
        choices=SPLITS,
        default="rating",
        help="hold out a share of all ratings ('rating', default) or of each user's ('user', "
        "RecBole's 8:1:1 protocol)",
    )
    parser.add_argument(
        "--retrieval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train and rank with the retrieval vectors (default on)",
    )
    parser.add_argument("--out", required=True, help="directory for report.md, plots, results")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    models, optimizers = args.models.split(","), args.optimizers.split(",")
    for name, chosen, known in (
        ("model", models, MODEL_KINDS),
        ("optimizer", optimizers, OPTIMIZERS),
    ):
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise ValueError(f"unknown {name}s {unknown}; choose from {', '.join(known)}")
    data = load_data(args)
    from training.evaluation.compare import compare
    from training.evaluation.report import write_report

    retrieval = RetrievalConfig(seed=args.seed or RetrievalConfig.seed) if args.retrieval else None
    results = compare(
        data,
        models,
        optimizers,
        epochs=args.epochs,
        seed=args.seed,
        split_by=args.split_by,
        retrieval=retrieval,
    )
    print(f"report: {write_report(results, args.out)}")
    return 0
