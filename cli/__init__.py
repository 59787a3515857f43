"""`recsys`: fetch data, train and export versions, measure them, serve them.

One module per subcommand, each a `register(subcommands)` that adds its parser and a `run(args)`
a few lines long calling the library (`training`, or `app` for `serve`). Start-up imports no
TensorFlow: `--help`, `fetch` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from artifact.errors import ArtifactError
from cli import compare, evaluate, fetch, importer, prune, retrain, serve, store, synth, train

# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA) is not for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SUBCOMMANDS = (fetch, train, retrain, compare, evaluate, prune, synth, serve, store, importer)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="recsys", description=__doc__.splitlines()[0])
    subcommands = top.add_subparsers(required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subcommands)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # The library logs (a dropped duplicate rating, a fetch fallback); the command shows them.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        code: int = args.run(args)
        return code
    except (FileNotFoundError, ValueError, ArtifactError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
