"""`recsys evaluate`: the compare report's metrics for one exported version, read back the way
it is served."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli.options import add_data_options, load_data

RANKING_NAMES = ("precision", "recall", "ndcg", "hit_rate", "map", "coverage")


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("evaluate", help="the compare metrics for one exported version")
    parser.add_argument("--model-dir", required=True, help="models/<name>/<version>")
    add_data_options(parser, required=False)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from artifact.manifest import read_manifest

    version = Path(args.model_dir)
    manifest = read_manifest(version)  # ArtifactError naming manifest.json if it is no version
    if args.dataset or args.ratings:
        data = load_data(args)
    else:
        from training.data.loaders import load_files

        source = manifest.training.get("data_source", "")
        if not source:
            raise ValueError("the manifest names no data source: pass --dataset or --ratings")
        data = load_files(source)
    from training.evaluation.version import evaluate_version

    figures = evaluate_version(version, data)
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print_evaluation(version, data.source, figures)
    return 0


def print_evaluation(version: Path, source: str, figures: dict[str, Any]) -> None:
    counts, k = figures["counts"], figures["k"]
    print(
        f"{version} on {source}: {counts['train']:,} / {counts['validation']:,} / "
        f"{counts['test']:,} ratings (train / validation / test)"
    )
    if not figures["split_matches_manifest"]:
        print("warning: this split's sizes differ from the manifest's: not the training data?")
    if figures["version_learned_test"]:
        print(
            "warning: this version was exported on every rating, test included, so the test "
            "figures below flatter it; the manifest's test metrics (from the model fitted on "
            "train+validation) are the honest ones"
        )
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
