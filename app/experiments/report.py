"""Online metrics and experiments' reports as the admin routes answer them, from the store's
counts (`app.events.online`): rates with their 95% intervals, and for an experiment the
difference between its variants, its p-value and the winner, or null while the interval holds
no difference."""

from __future__ import annotations

from typing import Any

from app.events.online import Counts, Interleaved, Key
from app.experiments.spec import Experiment
from app.experiments.stats import (
    Difference,
    difference,
    mean,
    means,
    rate,
    sequential,
    user_preference,
)

# The mixtures of the always-valid tests (`stats.sequential`), set once, a priori: the size
# of effect the experiments here are for. A user hit rate 5 points apart; a users' preference
# of 0.2 (on -1..1).
TAU_RATE = 0.05
TAU_PREFERENCE = 0.2


def verdict(fixed: Difference, tau: float) -> dict[str, Any]:
    """A comparison as reports show it: the always-valid interval and p-value (the winner's
    rule: the report may be read at any time), and the fixed-horizon ones beside them (valid
    for one look at a sample size chosen in advance)."""
    valid = sequential(fixed, tau)
    return {
        **valid.public(),
        "fixed_horizon": {k: v for k, v in fixed.public().items() if k != "value"},
    }


def group(key: Key, counts: Counts, n_items: int) -> dict[str, Any]:
    """One (version, experiment, variant)'s figures."""
    version, experiment, variant = key
    shown = len(counts.items_shown)
    return {
        "version": version,
        "experiment": experiment,
        "variant": variant,
        "users": counts.users,
        "impressions": counts.impressions,
        "could_be_hit": counts.could_be_hit,
        "hit_impressions": counts.hit_impressions,
        "hits": counts.hits,
        "hit_rate": rate(counts.hit_impressions, counts.could_be_hit).public(),
        "mean_rating_of_hits": mean(counts.rating_sum, counts.rating_squares, counts.hits).public(),
        "share_of_hits_4_plus": rate(counts.rated_4_plus, counts.hits).public(),
        "coverage": {
            "items": shown,
            "of": n_items,
            "share": round(shown / n_items, 6) if n_items else None,
            "impressions_read": counts.coverage_sample,
        },
    }


def control_of(experiment: Experiment) -> str:
    """The variant others are compared with: "control" when there is one, else the first."""
    return "control" if "control" in experiment.variants else sorted(experiment.variants)[0]


def ab(
    experiment: Experiment,
    found: dict[Key, Counts],
    users: dict[str, list[tuple[int, int]]],
    n_items: int,
) -> dict[str, Any]:
    """Per variant its figures; the verdict on users, the unit the split randomised: each
    user's hit rate (their impressions hit over those that could be), a variant's mean of
    them against the control's (Welch). Counting impressions as independent would not do: one
    user's answers are alike, and over five each the impression-level test named a version
    that served no better (bench/README.md, "The online loop")."""
    variants = {
        name: found.get((version, experiment.name, name), Counts())
        for name, version in experiment.variants.items()
    }
    rates = {
        name: [hit / could for could, hit in users.get(name, []) if could]
        for name in experiment.variants
    }
    control = control_of(experiment)
    differences = {
        name: {"versus": control, **verdict(means(rates[control], rates[name]), TAU_RATE)}
        for name in variants
        if name != control
    }
    beaten: dict[str, set[str]] = {name: set() for name in variants}
    for a in variants:  # a variant wins when its users do better than every other's, beyond doubt
        for b in variants:
            low = sequential(means(rates[b], rates[a]), TAU_RATE).estimate.low
            if a != b and low is not None and low > 0:
                beaten[a].add(b)
    winners = [a for a, lost in beaten.items() if len(lost) == len(variants) - 1]
    return {
        **experiment.public(),
        "variants": {
            name: {
                **group((experiment.variants[name], experiment.name, name), counts, n_items),
                "user_hit_rate": mean(
                    sum(rates[name]), sum(r * r for r in rates[name]), len(rates[name])
                ).public(),
            }
            for name, counts in variants.items()
        },
        "difference": differences,
        "winner": winners[0] if len(winners) == 1 else None,
    }


def interleave(experiment: Experiment, found: Interleaved) -> dict[str, Any]:
    first, second = experiment.variants
    per_variant = {
        name: {
            "version": version,
            "impressions": found.impressions,
            "could_be_hit": found.could_be_hit,
            "hit_impressions": found.hit_impressions.get(name, 0),
            "hits": found.hits.get(name, 0),
            "hit_rate": rate(found.hit_impressions.get(name, 0), found.could_be_hit).public(),
            "mean_rating_of_hits": mean(
                found.rating_sum.get(name, 0.0),
                found.rating_squares.get(name, 0.0),
                found.hits.get(name, 0),
            ).public(),
            "share_of_hits_4_plus": rate(
                found.rated_4_plus.get(name, 0), found.hits.get(name, 0)
            ).public(),
            "wins": found.wins.get(name, 0),
        }
        for name, version in experiment.variants.items()
    }
    # Both variants answer every impression: their hit rates come from the same answers, and the
    # verdict is the users' preference: per user, the share of their decided impressions the
    # second variant won minus the first's, averaged over users.
    diff = difference(
        found.hit_impressions.get(first, 0),
        found.could_be_hit,
        found.hit_impressions.get(second, 0),
        found.could_be_hit,
    )
    scores = [
        (won.get(second, 0) - won.get(first, 0)) / (won.get(second, 0) + won.get(first, 0))
        for won in found.user_wins.values()
        if won.get(second, 0) + won.get(first, 0)
    ]
    prefer = user_preference(scores)
    valid = sequential(prefer, TAU_PREFERENCE).estimate
    winner = None
    if valid.low is not None and valid.high is not None:
        winner = second if valid.low > 0 else first if valid.high < 0 else None
    return {
        **experiment.public(),
        "variants": per_variant,
        "difference": {second: {"versus": first, **diff.public()}},
        "preference": {second: {"versus": first, **verdict(prefer, TAU_PREFERENCE)}},
        "winner": winner,
    }
