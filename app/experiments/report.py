"""Online metrics and experiments' reports as the admin routes answer them, from the store's
counts (`app.events.online`): rates with their 95% intervals, and for an experiment the
difference between its variants, its p-value and the winner, or null while the interval holds
no difference."""

from __future__ import annotations

from typing import Any

from app.events.online import Counts, Interleaved, Key
from app.experiments.spec import Experiment
from app.experiments.stats import difference, mean, preference, rate


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


def ab(experiment: Experiment, found: dict[Key, Counts], n_items: int) -> dict[str, Any]:
    variants = {
        name: found.get((version, experiment.name, name), Counts())
        for name, version in experiment.variants.items()
    }
    control = control_of(experiment)
    base = variants[control]
    differences = {}
    beaten: dict[str, set[str]] = {name: set() for name in variants}
    for name, counts in variants.items():
        if name != control:
            diff = difference(
                base.hit_impressions, base.could_be_hit, counts.hit_impressions, counts.could_be_hit
            )
            differences[name] = {"versus": control, **diff.public()}
    for a in variants:  # a variant wins when its hit rate is above every other's, beyond doubt
        for b in variants:
            if a != b:
                diff = difference(
                    variants[b].hit_impressions,
                    variants[b].could_be_hit,
                    variants[a].hit_impressions,
                    variants[a].could_be_hit,
                )
                if diff.estimate.low is not None and diff.estimate.low > 0:
                    beaten[a].add(b)
    winners = [a for a, lost in beaten.items() if len(lost) == len(variants) - 1]
    return {
        **experiment.public(),
        "variants": {
            name: group((experiment.variants[name], experiment.name, name), counts, n_items)
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
    # verdict is the preference (a sign test over the impressions one of them won).
    diff = difference(
        found.hit_impressions.get(first, 0),
        found.could_be_hit,
        found.hit_impressions.get(second, 0),
        found.could_be_hit,
    )
    prefer = preference(found.wins.get(first, 0), found.wins.get(second, 0))
    winner = None
    if prefer.estimate.low is not None and prefer.estimate.high is not None:
        winner = second if prefer.estimate.low > 0 else first if prefer.estimate.high < 0 else None
    return {
        **experiment.public(),
        "variants": per_variant,
        "difference": {second: {"versus": first, **diff.public()}},
        "preference": {second: {"versus": first, **prefer.public()}},
        "winner": winner,
    }
