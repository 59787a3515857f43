"""`recsys serve`: serve the newest version over HTTP (the service itself; no training code)."""

from __future__ import annotations

import argparse
import os

# flag -> the RECSYS_* setting it sets
FLAGS = {
    "models_dir": "MODELS_DIR",
    "name": "MODEL_NAME",
    "host": "HOST",
    "port": "PORT",
    "workers": "WORKERS",
}


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("serve", help="serve the newest version over HTTP")
    parser.add_argument("--models-dir")
    parser.add_argument("--name")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Flags become RECSYS_* variables so every uvicorn worker process sees the same settings.
    for flag, env in FLAGS.items():
        if getattr(args, flag) is not None:
            os.environ[f"RECSYS_{env}"] = str(getattr(args, flag))
    from app.__main__ import serve

    serve()
    return 0
