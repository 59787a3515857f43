"""`recsys retrain`: the retrain loop. Each round trains a candidate from the base data and the
event store, judges it against the served version on the newest ratings that version never
learned, and publishes it only when it is not worse (`loop.round`)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from app.settings import seconds_of
from cli.options import (
    add_config_options,
    add_data_options,
    add_retrieval_options,
    config_from_args,
    item_item_config_from_args,
    load_data,
    retrieval_config_from_args,
)


def _seconds(text: str) -> float:
    value = seconds_of(text)
    assert isinstance(value, float)
    return value


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "retrain", help="retrain from the event store, publish only what beats the served version"
    )
    add_data_options(parser)
    parser.add_argument("--store", metavar="URL", required=True, help="the service's event store")
    parser.add_argument("--name", default="movielens", help="model name (models/<name>/)")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument(
        "--min-new-events", type=int, default=1000,
        help="a round when this many ratings arrived that the served version never learned "
        "(default 1,000)",
    )  # fmt: skip
    parser.add_argument(
        "--every", type=_seconds, default=86_400.0,
        help="or when this long passed since the last round (seconds, or 12h, 1d; default 24h)",
    )  # fmt: skip
    parser.add_argument(
        "--check-every", type=_seconds, default=60.0,
        help="how often to look whether a round is due (default 60 s)",
    )  # fmt: skip
    parser.add_argument("--once", action="store_true", help="one round now; exit with its verdict")
    parser.add_argument(
        "--holdout", type=float, default=0.1,
        help="the newest share of the new ratings held out to judge on (default 0.1)",
    )  # fmt: skip
    parser.add_argument(
        "--tolerance", type=float, default=0.02,
        help="how much worse than the served version the candidate may be, on NDCG@10 and on "
        "RMSE (default 0.02)",
    )  # fmt: skip
    parser.add_argument(
        "--served-version", type=int, default=None,
        help="the version the service was started pinned to, judged against when no admin pin "
        "is stored (default: $RECSYS_MODEL_VERSION, as the service reads it; else the newest)",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true",
        help="publish whatever the gate says (the manifest says so)",
    )  # fmt: skip
    add_config_options(parser)
    add_retrieval_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.holdout < 1:
        raise ValueError(f"--holdout {args.holdout:g}: need a share between 0 and 1")
    if args.tolerance < 0:
        raise ValueError(f"--tolerance {args.tolerance:g}: need 0 or more")
    pinned = _served_version(args.served_version)
    from loop.round import Plan, due
    from loop.round import run as run_round

    data = load_data(args)
    extra = {
        "flags": {k: v for k, v in vars(args).items() if k not in ("run",) and _plain(v)},
    }
    plan = Plan(
        store=args.store,
        models_dir=Path(args.models_dir),
        name=args.name,
        data=data,
        config=config_from_args(args, len(data.ratings)),
        retrieval=retrieval_config_from_args(args),
        item_item=item_item_config_from_args(args),
        ann_min_items=args.ann_min_items,
        holdout=args.holdout,
        tolerance=args.tolerance,
        force=args.force,
        pinned=pinned,
        extra=extra,
    )
    if args.once:
        record = run_round(plan)
        return 0 if record["verdict"] in ("passed", "forced") else 1
    print(f"retrain loop: a round at {args.min_new_events:,} new ratings or every {args.every:g} s")
    while True:
        why = due(plan, args.min_new_events, args.every)
        if why is not None:
            print(f"round due: {why}")
            run_round(plan)
        time.sleep(args.check_every)


def _served_version(given: int | None) -> int | None:
    """The flag, else RECSYS_MODEL_VERSION as the service reads it (a bad value is an error
    here too: the service would not start with it)."""
    raw = str(given) if given is not None else os.environ.get("RECSYS_MODEL_VERSION", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"served version {raw!r} (--served-version or RECSYS_MODEL_VERSION): "
                         "need a version number, 1 or more")  # fmt: skip
    return int(raw)


def _plain(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
