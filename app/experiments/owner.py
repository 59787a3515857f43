"""The one owner of experiments: which runs, read from the store's control rows by every worker
and replica every RECSYS_SYNC_SECONDS (and at start-up, so a restart keeps it), the variants'
versions served beside the default one, and each request's route through them.

One experiment runs at a time. Starting one loads and checks its versions first: a version that
cannot be served refuses the experiment and nothing is stored. Ending one keeps its record, and
with it its report (`GET /admin/experiments/{name}` counts the answers given while it ran).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, replace

from app import periodic
from app.errors import ServiceError
from app.events.control import ControlRows
from app.events.live import LiveVersion
from app.experiments.assign import variant_of
from app.experiments.spec import PREFIX, Experiment, ExperimentBody
from app.metrics import Metrics
from app.serving.versions import ServedVersion, VersionOwner
from app.settings import Settings

log = logging.getLogger("app")
RETRAIN = "retrain:"  # the retrain loop's history rows (`loop.round`)


class ExperimentConflict(ServiceError):
    status = 409


class NoSuchExperiment(ServiceError):
    status = 404

    def __init__(self, name: str):
        super().__init__(f"no experiment {name!r}")


@dataclass(frozen=True)
class Arm:
    """One version answering a request: the default, or an experiment's variant."""

    variant: str | None
    served: ServedVersion[LiveVersion]


@dataclass(frozen=True)
class Route:
    """How one request is answered: by one arm, or (interleave) by two whose lists are merged."""

    experiment: Experiment | None
    arms: tuple[Arm, ...]

    @property
    def interleaved(self) -> bool:
        return len(self.arms) == 2


class Experiments:
    def __init__(
        self,
        settings: Settings,
        rows: ControlRows,
        versions: VersionOwner[LiveVersion],
        metrics: Metrics,
    ):
        self.settings, self.rows, self.versions, self.metrics = settings, rows, versions, metrics
        self.known: dict[str, Experiment] = {}  # every experiment the store holds, ended ones too
        self.running: Experiment | None = None
        self.lock = asyncio.Lock()
        self.follower: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the experiments, serve the running one's versions, then follow the store."""
        await self.follow()
        seconds = self.settings.sync_seconds or self.settings.poll_seconds
        if seconds > 0:
            self.follower = periodic.every(seconds, self.follow, "experiments")

    async def stop(self) -> None:
        await periodic.stop(self.follower)

    async def follow(self) -> None:
        """The store's experiments, served (failures logged: tried again next time). Read under
        the lock: a read from before a change made here must not undo it."""
        async with self.lock:
            try:
                rows = await self.rows.list(PREFIX)
            except ServiceError as err:
                log.error("could not read the experiments, trying again: %s", err)
                return
            known = {}
            for key, (value, _) in rows.items():
                try:
                    known[key.removeprefix(PREFIX)] = Experiment.from_json(value)
                except (ValueError, KeyError, TypeError) as err:
                    log.error("ignoring the control row %r: not an experiment (%s)", key, err)
            self.known = known
            self._count_refusals(await self.rows.list(RETRAIN))
            running = next((e for e in known.values() if e.running), None)
            try:
                await self.versions.serve_also(running.versions if running else set())
            except ServiceError as err:
                log.error("experiment %s not served here, trying again: %s", running, err)
                return
            if running != self.running:
                log.info("experiment: %s", running.public() if running else "none running")
            self.running = running

    async def put(self, name: str, body: ExperimentBody) -> Experiment:
        """Start `name`, or answer it as it is when it runs already with the same design.

        Raises:
            ExperimentConflict: another runs, or `name` ran already or runs otherwise (409).
            NoSuchVersion, VersionRefused: a variant's version cannot be served (nothing stored).
        """
        async with self.lock:
            wanted = Experiment.of(name, body, time.time())
            existing = self.known.get(name)
            if existing is not None:
                if existing.running and replace(existing, started=wanted.started) == wanted:
                    return existing
                state = "runs with another design" if existing.running else "has ended"
                raise ExperimentConflict(
                    f"experiment {name!r} {state}: end it, or start one of another name (an "
                    "ended experiment keeps its report)"
                )
            if self.running is not None:
                raise ExperimentConflict(
                    f"experiment {self.running.name!r} is running: one at a time (end it first)"
                )
            await self.versions.serve_also(wanted.versions)
            await self.rows.put(PREFIX + name, wanted.to_json())
            self.known[name], self.running = wanted, wanted
            log.info("experiment started: %s", wanted.public())
            return wanted

    async def end(self, name: str) -> Experiment:
        """End `name` (its record and report stay); ended already, it is answered as it is.

        Raises:
            NoSuchExperiment: the store has no experiment of that name (404).
        """
        async with self.lock:
            existing = self.known.get(name)
            if existing is None:
                raise NoSuchExperiment(name)
            if not existing.running:
                return existing
            ended = replace(existing, ended=time.time())
            await self.rows.put(PREFIX + name, ended.to_json())
            self.known[name] = ended
            if self.running is not None and self.running.name == name:
                self.running = None
            await self.versions.serve_also(set())
            log.info("experiment ended: %s", ended.public())
            return ended

    def _count_refusals(self, rounds: dict[str, tuple[str, int]]) -> None:
        """The retrain loop's refused rounds (its history rows, `loop.round`), for /metrics."""
        refused = 0
        for key, (value, _) in rounds.items():
            try:
                refused += sum(1 for r in json.loads(value) if r.get("verdict") == "refused")
            except (ValueError, TypeError, AttributeError) as err:
                log.error("ignoring the control row %r: not a retrain history (%s)", key, err)
        self.metrics.retrain_refused.set(refused)

    def get(self, name: str) -> Experiment:
        found = self.known.get(name)
        if found is None:
            raise NoSuchExperiment(name)
        return found

    def route(self, default: ServedVersion[LiveVersion], user_id: str | None) -> Route:
        """The arms that answer `user_id` (read `default` once: the request's served version).
        A variant whose version this worker does not serve yet answers with the default, outside
        the experiment, rather than wait."""
        experiment = self.running
        if experiment is None or user_id is None:
            return Route(None, (Arm(None, default),))
        if experiment.method == "ab":
            variant = variant_of(experiment, user_id)
            served = self._served(default, experiment.variants[variant])
            if served is None:
                return Route(None, (Arm(None, default),))
            return Route(experiment, (Arm(variant, served),))
        arms = []
        for variant, version in experiment.variants.items():
            served = self._served(default, version)
            if served is None:
                return Route(None, (Arm(None, default),))
            arms.append(Arm(variant, served))
        return Route(experiment, tuple(arms))

    def _served(
        self, default: ServedVersion[LiveVersion], version: int
    ) -> ServedVersion[LiveVersion] | None:
        if default.loaded.version == version:
            return default
        return self.versions.also.get(version)
