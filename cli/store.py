"""`recsys store backup PATH` and `recsys store restore PATH`: the event store to one file and
back, each checked (the restored log equals the backup's: rows, last id, checksum)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("store", help="back the event store up, or restore it")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    for name, helps in (
        ("backup", "write the store's log and control rows to PATH (a new file)"),
        ("restore", "write the backup at PATH into the store, checked (the service stopped)"),
    ):
        action = actions.add_parser(name, help=helps)
        action.add_argument("path", type=Path, metavar="PATH")
        action.add_argument(
            "--store", metavar="URL", help="sqlite:///path or postgresql://...; default "
            "RECSYS_STORE_URL, else the service's default SQLite file",
        )  # fmt: skip
        if name == "restore":
            action.add_argument(
                "--replace",
                action="store_true",
                help="replace a store that holds events (stop the service first)",
            )
        action.set_defaults(run=run, action=name)


def run(args: argparse.Namespace) -> int:
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # its chatter is not ours to show

    from app.events.backup import BackupError, backup, restore, store_url_of
    from artifact.eventlog import public_url

    url = store_url_of(args.store)
    try:
        if args.action == "backup":
            summary = backup(url, args.path)
            print(f"backed up {public_url(url)} to {args.path}: {summary.describe()}")
        else:
            summary, identity = restore(args.path, url, args.replace)
            print(
                f"restored {args.path} into {public_url(url)}: {summary.describe()}, the same as "
                f"the backup; the store's identity is now {identity}"
            )
    except BackupError as err:
        raise ValueError(str(err)) from None
    return 0
