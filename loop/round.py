"""One round of the retrain loop, and when one is due.

A round: the served version (the admin's pin in the store, else the newest under the models
directory) and the store's ratings it never learned (after its `events.through`, when it learned
from this store); the newest of those held out (`loop.holdout`); a candidate trained on the
base data and the store without them, in a directory of its own; both judged on them
(`loop.gate`); published only when the candidate passes (or with `force`), refitted with the
held-out ratings included, as `recsys train` fits its final version, the gate in its manifest.
Every round is written down, refused ones included, in the store's control row
`retrain:<name>` (the service's /admin/online shows them; recsys_retrain_refused_total counts
the refusals).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.events.store import EventStore
from app.events.view import VersionView
from app.experiments.owner import RETRAIN
from app.serving.control import Choice
from app.serving.loader import load_version
from artifact.eventlog import StoreIdentity, log, read_log
from artifact.layout import list_versions
from artifact.manifest import GateScores, GateSpec, Manifest, read_manifest
from loop.gate import answers, judge, live_view
from loop.holdout import choose
from training.config import ItemItemConfig, RetrievalConfig, TrainConfig
from training.data.events import with_events
from training.data.ratings import RatingsData
from training.fitting import Log
from training.pipeline import train_version

HISTORY = RETRAIN  # the store's control rows of rounds, one per model
KEEP_ROUNDS = 50


@dataclass(frozen=True)
class Plan:
    """What every round trains and how it judges (the `recsys retrain` flags)."""

    store: str
    models_dir: Path
    name: str
    data: RatingsData
    config: TrainConfig
    retrieval: RetrievalConfig | None
    item_item: ItemItemConfig | None = None
    ann_min_items: int | None = None
    holdout: float = 0.1
    tolerance: float = 0.02
    force: bool = False
    pinned: int | None = None  # the service's start-up pin (RECSYS_MODEL_VERSION), if any
    extra: dict[str, Any] = field(default_factory=dict)  # the flags, for the record


def served_version(plan: Plan, store: EventStore) -> int:
    """The version the service serves, by its rule: the admin's pin, else the pin it was
    started with, else the newest on disk."""
    found = store.control_get(f"admin:{plan.name}")
    if found is not None:
        pinned = Choice.parse(json.loads(found[0]), f"admin:{plan.name}").pinned
        if pinned is not None:
            return pinned
    if plan.pinned is not None:
        return plan.pinned
    models_dir, name = plan.models_dir, plan.name
    versions = list_versions(models_dir / name)
    if not versions:
        raise ValueError(f"no version under {models_dir / name} to judge a candidate against")
    return versions[0]


def learned_by(manifest: Manifest, identity: StoreIdentity) -> int:
    events = manifest.events
    return 0 if events is None else identity.learned(events.store_id, events.through)


def new_ratings(store: EventStore, learned: int) -> int:
    """Ratings stored after `learned` (what the served version never saw)."""
    query = select(func.count()).select_from(log).where(log.c.kind == "rating", log.c.id > learned)
    return int(store.read(lambda conn: conn.execute(query).scalar_one()))


def run(plan: Plan, say: Log = print) -> dict[str, Any]:
    """One round; its record (written to the store's history too).

    Raises:
        ValueError: nothing to judge against (no version), or the store cannot be read.
    """
    started = time.time()
    store = EventStore(plan.store)
    identity = store.open()
    try:
        baseline_version = served_version(plan, store)
        baseline = load_version(plan.models_dir / plan.name / str(baseline_version))
        learned = learned_by(baseline.manifest, identity)
        _, rows = read_log(plan.store)
        logged = list(rows)
        new = [r for r in logged if r["kind"] == "rating" and r["id"] > learned]
        held = choose(new, plan.holdout)
        record: dict[str, Any] = {
            "at": started,
            "baseline_version": baseline_version,
            "new_ratings": held.unlearned,
            "held_out_ratings": len(held.ratings),
            "held_out_users": held.users,
            "tolerance": plan.tolerance,
            **plan.extra,
        }
        say(
            f"round: version {baseline_version} serves; {held.unlearned:,} ratings it never "
            f"learned, {len(held.ratings):,} of {held.users:,} users held out"
        )
        if held.ratings.empty:
            record |= {"verdict": "refused", "reason": "no new ratings to judge a candidate on"}
            return _written(store, plan.name, record, started, say)
        with tempfile.TemporaryDirectory(prefix="recsys-candidate-") as scratch:
            fitted = train_version(
                with_events(plan.data, plan.store, skip=held.ids), scratch, plan.name,
                plan.config, plan.retrieval, log=say, item_item=plan.item_item,
                ann_min_items=plan.ann_min_items,
            )  # fmt: skip
            assert fitted.path is not None
            candidate = load_version(fitted.path)
            kept = [r for r in logged if r["id"] not in held.ids]
            verdict = judge(
                answers(live_view(baseline, learned, kept), held.ratings),
                answers(VersionView.empty(candidate), held.ratings),
                held.ratings,
                plan.tolerance,
            )
        record |= {
            "baseline": verdict.baseline,
            "candidate": verdict.candidate,
            "judged_users": verdict.users,
            "judged_pairs": verdict.pairs,
            "reason": verdict.reason,
        }
        say(f"gate: {'passed' if verdict.passed else 'refused'}: {verdict.reason}")
        if not verdict.passed and not plan.force:
            record["verdict"] = "refused"
            return _written(store, plan.name, record, started, say)
        gate = GateSpec(
            baseline_version=baseline_version,
            baseline=GateScores(**verdict.baseline),
            candidate=GateScores(**verdict.candidate),
            tolerance=plan.tolerance,
            verdict="passed" if verdict.passed else "forced",
            held_out_ratings=len(held.ratings),
            held_out_users=held.users,
        )
        published = train_version(
            with_events(plan.data, plan.store), plan.models_dir, plan.name, plan.config,
            plan.retrieval, log=say, item_item=plan.item_item,
            ann_min_items=plan.ann_min_items, gate=gate,
        )  # fmt: skip
        assert published.path is not None
        record |= {"verdict": gate.verdict, "published_version": int(published.path.name)}
        return _written(store, plan.name, record, started, say)
    finally:
        store.close()


def _written(
    store: EventStore, name: str, record: dict[str, Any], started: float, say: Log
) -> dict[str, Any]:
    record["seconds"] = round(time.time() - started, 1)
    key = HISTORY + name
    found = store.control_get(key)
    history = json.loads(found[0]) if found else []
    history = [*history, record][-KEEP_ROUNDS:]
    store.control_put(key, json.dumps(history))
    published = record.get("published_version")
    made = f", published as {name} version {published}" if published is not None else ""
    say(f"round written down: {record['verdict']}{made} in {record['seconds']} s")
    return record


def last_round(store: EventStore, name: str) -> dict[str, Any] | None:
    found = store.control_get(HISTORY + name)
    history = json.loads(found[0]) if found else []
    return history[-1] if history else None


def due(plan: Plan, min_new: int, every: float) -> str | None:
    """Why a round is due now (None: it is not): `min_new` ratings the served version never
    learned, or `every` seconds since the last round (or since the served version was made)."""
    store = EventStore(plan.store)
    identity = store.open()
    try:
        version = served_version(plan, store)
        path = plan.models_dir / plan.name / str(version)
        fresh = new_ratings(store, learned_by(read_manifest(path), identity))
        if fresh >= min_new:
            return f"{fresh:,} new ratings (at least {min_new:,})"
        previous = last_round(store, plan.name)
        since = previous["at"] if previous else path.stat().st_mtime
        if time.time() - since >= every and fresh > 0:
            return f"{(time.time() - since) / 3600:.1f} h since the last round"
        return None
    finally:
        store.close()
