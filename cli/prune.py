"""`recsys prune`: delete all but the newest K versions of a model."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from artifact.layout import list_versions  # what the service counts as a version


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("prune", help="delete all but the newest K versions of a model")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--name", default="movielens")
    parser.add_argument("--keep", type=int, required=True, help="how many newest versions to keep")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.keep < 1:
        raise ValueError("--keep must be at least 1: the newest version is what is served")
    base = Path(args.models_dir) / args.name
    versions = list_versions(base)
    for version in versions[args.keep :]:
        shutil.rmtree(base / str(version))
        print(f"deleted {base / str(version)}")
    print(f"kept {', '.join(str(v) for v in versions[: args.keep]) or 'nothing'} under {base}")
    return 0
