"""`recsys import FILE --url URL`: load an existing ratings file (any form `recsys train`
reads) into a running service through the client, in batches of its limit, with a progress
line and a summary of accepted, duplicate and refused ratings. Each rating's `event_id` is a
digest of its user, item, rating and time, so importing the same file again stores nothing
twice (the second run reports duplicates)."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Iterator
from typing import Any


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("import", help="load a ratings file into a running service")
    parser.add_argument("ratings", help="ratings.csv, u.data, ratings.dat or a RecBole .inter")
    parser.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--api-key", default=os.environ.get("RECSYS_API_KEY"), help="default: $RECSYS_API_KEY"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("RECSYS_WRITE_TOKEN"),
        help="the write token (default: $RECSYS_WRITE_TOKEN)",
    )
    parser.add_argument("--batch-size", type=int, help="default: the service's limit")
    parser.set_defaults(run=run)


def events(path: str) -> tuple[int, Iterator[dict[str, Any]]]:
    from training.data.formats import read_ratings_file

    frame = read_ratings_file(path)
    stamps = frame["timestamp"] if "timestamp" in frame else [None] * len(frame)

    def each() -> Iterator[dict[str, Any]]:
        for user, item, rating, when in zip(
            frame["user_id"], frame["item_id"], frame["rating"], stamps, strict=True
        ):
            event = {"user_id": user, "item_id": item, "rating": float(rating)}
            if when is not None:
                event["timestamp"] = int(when)
            key = f"{user}\t{item}\t{float(rating)}\t{event.get('timestamp', '')}"
            event["event_id"] = "import-" + hashlib.sha256(key.encode()).hexdigest()[:32]
            yield event

    return len(frame), each()


def run(args: argparse.Namespace) -> int:
    from recsys_client import Client, EventsSummary, RecsysError

    total, stream = events(args.ratings)
    tty = sys.stderr.isatty()

    def progress(summary: EventsSummary) -> None:
        line = f"{summary.sent:,} of {total:,} ratings sent ({summary.sent / max(total, 1):.0%})"
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    with Client(args.url, api_key=args.api_key, token=args.token, timeout=60) as client:
        try:
            summary = client.send_events(
                stream, batch_size=args.batch_size, progress=progress, skip_invalid=True
            )
        except RecsysError as err:
            print(f"\nerror: {err}", file=sys.stderr)
            return 1
    if tty:
        print(file=sys.stderr)
    print(
        f"{total:,} ratings from {args.ratings}: {summary.accepted:,} accepted, "
        f"{summary.duplicates:,} duplicates, {len(summary.refused):,} refused "
        f"({summary.batches:,} batches)"
    )
    for refusal in summary.refused[:10]:
        print(f"  refused: rating {refusal.index + 1} ({refusal.field}): {refusal.reason}")
    if len(summary.refused) > 10:
        print(f"  ... and {len(summary.refused) - 10:,} more")
    return 0
