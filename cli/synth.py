"""`recsys synth`: write a synthetic data set in ratings.csv/movies.csv form."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "synth", help="write a synthetic data set in ratings.csv/movies.csv form"
    )
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--ratings", type=int, required=True)
    parser.add_argument("--factors", type=int, default=8, help="rank of the planted structure")
    parser.add_argument(
        "--tastes",
        type=int,
        metavar="N",
        help="plant N taste groups that decide which films each user rates, with heavy-tailed "
        "activity (training.data.planted: a set that judges top-N); without it every user "
        "picks films by popularity alone",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="directory for ratings.csv and movies.csv")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.tastes:
        from training.data.planted import planted_ratings

        ratings, items, _ = planted_ratings(
            args.users, args.items, args.ratings, tastes=args.tastes, seed=args.seed
        )
    else:
        from training.data.synthetic import synthetic_ratings

        ratings, items = synthetic_ratings(
            args.users, args.items, args.ratings, factors=args.factors, seed=args.seed,
            half_stars=True,
        )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ratings.rename(columns={"user_id": "userId", "item_id": "movieId"}).to_csv(
        out / "ratings.csv", index=False
    )
    movies = items.assign(genres=items["genres"].map("|".join))
    movies.rename(columns={"item_id": "movieId"}).to_csv(out / "movies.csv", index=False)
    print(
        f"{len(ratings):,} ratings by {ratings['user_id'].nunique():,} users of "
        f"{ratings['item_id'].nunique():,} items in {out / 'ratings.csv'} and movies.csv"
    )
    return 0
