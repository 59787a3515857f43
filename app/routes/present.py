"""Answers through experiments: the request's route (`app.experiments.owner.Route`) names the
arm or arms that answer; one arm's list is the answer, two arms' lists (interleaving) are
merged by team draft, each item credited to the arm that placed it. Either way the answer is
recorded as an impression and carries its recommendation id, its version and, in an experiment,
the experiment and the user's variant (null when interleaved: the user saw both)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from app.events.view import VersionView
from app.experiments.assign import team_draft
from app.experiments.owner import Route
from app.ranking.types import Recommendation
from app.state import ServiceState


@dataclass(frozen=True)
class Listed:
    """One arm's answer: its ranking, the items as the answer shows them, the view that ranked
    them, and the note on how they were explained (when they were)."""

    ranked: Recommendation
    items: list[dict[str, Any]]
    view: VersionView
    note: dict[str, Any] | None = None


Produce = Callable[[VersionView], Listed]


def present(
    service: ServiceState,
    route: Route,
    name: str,
    user_id: str | None,
    produce: Produce,
    n: int,
) -> tuple[Listed, dict[str, Any]]:
    """The answer through `route` (items merged when interleaved; the rest is the first arm's)
    and the fields that name it; recorded as an impression of route `name`."""
    impressions, experiment = service.events.impressions, route.experiment
    rid = impressions.new_id()
    if not route.interleaved:
        (arm,) = route.arms
        listed = produce(arm.served.live.view)
        version = arm.served.loaded.version
        ids = [item["item_id"] for item in listed.items]
        within = experiment.name if experiment else None
        impressions.record(rid, name, user_id, version, ids, within, arm.variant)
        service.metrics.impression(name, version, arm.variant)
        fields: dict[str, Any] = {"recommendation_id": rid, "version": version}
        if experiment is not None:
            fields |= {"experiment": experiment.name, "variant": arm.variant}
        return listed, fields
    assert experiment is not None
    first, second = (produce(arm.served.live.view) for arm in route.arms)
    merged, credit = team_draft(
        [i["item_id"] for i in first.items], [i["item_id"] for i in second.items], n, rid
    )
    placed = ({i["item_id"]: i for i in first.items}, {i["item_id"]: i for i in second.items})
    credits = tuple(
        (route.arms[c].variant or "", route.arms[c].served.loaded.version) for c in credit
    )
    version = route.arms[0].served.loaded.version
    impressions.record(rid, name, user_id, version, merged, experiment.name, None, credits)
    service.metrics.impression(name, version, "interleave")
    items = [placed[c][item] for item, c in zip(merged, credit, strict=True)]
    fields = {
        "recommendation_id": rid,
        "version": version,
        "experiment": experiment.name,
        "variant": None,
    }
    return replace(first, items=items), fields
