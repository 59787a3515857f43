"""`recsys train`: train the rating model and the retrieval vectors, export a new version."""

from __future__ import annotations

import argparse
import time

from cli.options import (
    add_config_options,
    add_data_options,
    add_retrieval_options,
    config_from_args,
    item_item_config_from_args,
    load_data,
    retrieval_config_from_args,
)


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("train", help="train a model and export it as a new version")
    add_data_options(parser)
    parser.add_argument(
        "--store",
        metavar="URL",
        help="also learn every rating in the service's event store (sqlite:///path or "
        "postgresql://...), forgotten users left out; the manifest records the last event",
    )
    parser.add_argument("--name", default="movielens", help="model name (models/<name>/)")
    parser.add_argument("--models-dir", default="models")
    add_config_options(parser)
    add_retrieval_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    data = load_data(args)
    print(f"loaded {len(data.ratings):,} ratings in {time.perf_counter() - started:.0f} s")
    if args.store:
        from training.data.events import with_events

        data = with_events(data, args.store)
        s = data.store
        print(
            f"event store {s.store}: {s.ratings:,} ratings through log id {s.through}, "
            f"{s.forgotten} users forgotten, {s.items} items registered, {s.impressions:,} "
            "impressions (exposure, not ratings)"
        )
    config = config_from_args(args, len(data.ratings))
    retrieval = retrieval_config_from_args(args)
    from training.distribute import cluster_from_env, strategy_for
    from training.pipeline import train_version

    item_item = item_item_config_from_args(args)
    cluster = cluster_from_env()
    if cluster.workers > 1:
        role = "the chief: it exports" if cluster.chief else "the chief exports"
        print(f"TF_CONFIG: worker {cluster.index} of {cluster.workers} ({role})")
    with strategy_for(cluster).scope():
        version = train_version(
            data, args.models_dir, args.name, config, retrieval, item_item=item_item,
            export=cluster.chief, ann_min_items=args.ann_min_items,
        )  # fmt: skip
    print(f"stages: {version.describe_stages()}")
    if version.path is None:
        print(f"worker {cluster.index}: trained; nothing exported (the chief exports)")
        return 0
    print(f"exported {args.name} version {version.path.name} to {version.path}")
    for part, m in version.rating.metrics.items():
        print(f"{part:>10}: RMSE {m['rmse']:.4f}  MAE {m['mae']:.4f}  ({m['count']:,} ratings)")
    if version.retrieval is not None:
        for part, m in version.retrieval.metrics.items():
            if part == "popularity_test":
                print(
                    f"      test: top-10 of the most-rated films (the floor): NDCG {m['ndcg']:.4f}"
                )
                continue
            print(
                f"{part:>10}: top-10 from the retrieval vectors: NDCG {m['ndcg']:.4f}  "
                f"recall {m['recall']:.4f}  precision {m['precision']:.4f}"
            )
        blended, ranker = version.retrieval.item_item, version.retrieval.ranker
        if blended is not None:
            served = "" if ranker is not None else " (what /recommend serves)"
            for part, m in blended.metrics.items():
                print(
                    f"{part:>10}: top-10 from the item-item blend{served}: "
                    f"NDCG {m['ndcg']:.4f}  recall {m['recall']:.4f}"
                )
        if ranker is not None:
            for part, m in ranker.metrics.items():
                print(
                    f"{part:>10}: top-10 from the learned ranker over the blend (what /recommend "
                    f"serves): NDCG {m['ndcg']:.4f}"
                )
    return 0
