"""The one owner of the served version: which version serves, swapping it without downtime,
pins, and the versions refused with why.

The served version, its /predict batcher and its live state (what the event log adds to it:
`attach`, given by the composition root) live together in one `ServedVersion`, replaced by a
single assignment on the event loop. A handler reads `VersionOwner.served` once and works on that
object to the end, so requests in flight finish on the version they started with. A new version is
loaded, checked and warmed up (`load_version`) in a thread while the old one keeps serving, and
its live state is built before the swap; a version that fails is logged with the reason and
skipped until its manifest changes on disk.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from app import periodic
from app.errors import ModelNotReady, NoSuchVersion, ServiceError, VersionRefused
from app.metrics import Metrics
from app.serving.batcher import PredictBatcher
from app.serving.control import Choice, Control
from app.serving.loader import LoadedVersion, NoServableVersion, load_newest, load_version
from app.settings import Settings
from artifact.errors import ArtifactError
from artifact.layout import MANIFEST, list_versions

log = logging.getLogger("app")


L = TypeVar("L")  # what `attach` gives a served version: its live state


@dataclass(frozen=True)
class ServedVersion(Generic[L]):
    """What serves right now: a loaded version, the batcher that runs its SavedModel, and its
    live state."""

    loaded: LoadedVersion
    batcher: PredictBatcher | None
    live: L


class VersionOwner(Generic[L]):
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        attach: Callable[[list[LoadedVersion]], Awaitable[list[L]]],
        control: Control,
    ):
        """`attach(versions)`: the live state of each version, once they are the served ones
        (called before each swap, awaited; the old version serves meanwhile). `control`: where
        admins' choices are shared with every other worker (`app.serving.control`)."""
        self.settings, self.metrics, self.attach = settings, metrics, attach
        self.base = settings.models_dir / settings.model_name
        self.served: ServedVersion[L] | None = None
        # Versions served beside the default one, for an experiment's variants (`serve_also`).
        self.also: dict[int, ServedVersion[L]] = {}
        # An admin's pin overrides RECSYS_MODEL_VERSION until a reload removes it.
        self.control = control
        self.pinned: int | None = settings.model_version
        self.reloads = 0
        self.refused: dict[int, tuple[float, str]] = {}  # version -> (manifest mtime, reason)
        self.lock = asyncio.Lock()
        # Held while a choice is read and followed, or made and written: a read from before a
        # choice made here must not undo it.
        self.choosing = asyncio.Lock()
        self.poller: asyncio.Task[None] | None = None
        self.follower: asyncio.Task[None] | None = None
        self.reported: list[str] = []  # the problems the log last heard of
        # Told of every swap, once it is done (the OpenAPI schema states the served scale).
        self.on_swap: list[Callable[[LoadedVersion], None]] = []

    async def start(self) -> None:
        """Serve the pinned or newest loadable version, then poll. With none: /ready says 503
        and the poller waits for one, or, with `require_model`, startup fails (the process exits
        non-zero: an orchestrator sees the failure instead of a pod that never gets ready).

        Raises:
            NoServableVersion: nothing loads and `require_model` is set.
        """
        try:
            choice = await self.control.read()
        except (OSError, ValueError, ServiceError) as err:  # must not keep the service down
            log.error("ignoring the admin's choice: %s", err)
            choice = None
        if choice is not None:
            self.pinned, self.reloads = choice.pinned or self.pinned, choice.reloads
        refused: dict[int, str] = {}
        try:
            loaded = load_newest(
                self.base, self.pinned, refused, self.settings.ann, self.settings.predict_from
            )
        except NoServableVersion as err:
            if self.settings.require_model:
                log.error("no model to serve, exiting (RECSYS_REQUIRE_MODEL): %s", err)
                raise
            log.error("no model to serve, /ready answers 503: %s", err)
        else:
            await self._swap_in(loaded)
        for version, reason in refused.items():  # not retried until their manifest changes
            self.refused[version] = (_mtime(self.base / str(version)), reason)
            self.metrics.versions_refused.set(len(self.refused))
        # Admins' choices every RECSYS_SYNC_SECONDS (with the store's other changes), new
        # versions every RECSYS_POLL_SECONDS; without a sync interval, both at the version poll.
        sync = self.settings.sync_seconds
        if sync > 0:
            self.follower = periodic.every(sync, self.follow, "admin's choice")
        if self.settings.poll_seconds > 0:
            self.poller = periodic.every(self.settings.poll_seconds, self.poll, "version check")

    async def poll(self) -> None:
        """Look for a newer version (first following what an admin chose, when nothing else
        does: a broken choice must not hold back new versions)."""
        if self.follower is None:
            await self.follow()
        problems = self.problems()
        for problem in set(problems) - set(self.reported):
            log.error("%s", problem)
        if self.reported and not problems:
            log.info("the models directory and the served version's files are back")
        self.reported = problems
        await self.swap_to_newest()

    async def follow(self) -> None:
        """`follow_admin`, its failures logged: tried again at the next poll."""
        try:
            await self.follow_admin()
        except (OSError, ValueError, ServiceError) as err:
            log.error("could not follow the admin's choice, trying again next poll: %s", err)

    async def follow_admin(self) -> None:
        """Apply the persisted admin choice when it differs from this worker's."""
        async with self.choosing:
            await self._follow_admin()

    async def _follow_admin(self) -> None:
        choice = await self.control.read()
        if choice is None:
            return
        pinned = choice.pinned or self.settings.model_version
        if (pinned, choice.reloads) == (self.pinned, self.reloads):
            return
        if choice.reloads != self.reloads:
            self.refused.clear()
            self.metrics.versions_refused.set(len(self.refused))
        served = self.served.loaded.version if self.served else None
        if pinned is not None and pinned != served:
            await self.serve_version(pinned)  # raises if refused: tried again at the next poll
        self.pinned, self.reloads = pinned, choice.reloads
        log.info("following the admin's choice: pinned %s, reload %s", self.pinned, self.reloads)

    async def pin(self, version: int) -> LoadedVersion:
        """Serve `version` on this worker now and on every other at its next poll.

        Raises:
            NoSuchVersion, VersionRefused: as `serve_version` (nothing is persisted then).
            StoreUnavailable: served here but not persisted (this worker follows the persisted
                choice again at its next poll).
        """
        async with self.choosing:
            loaded = await self.serve_version(version, pin=True)
            await self.control.write(Choice(version, self.reloads))
            return loaded

    async def stop(self) -> None:
        await periodic.stop(self.follower)
        await periodic.stop(self.poller)
        if self.served is not None and self.served.batcher is not None:
            await self.served.batcher.cancel()

    async def swap_to_newest(self) -> bool:
        """Serve the newest version if it is newer than the served one and not refused (and
        nothing is pinned). True when a new version now serves."""
        if self.pinned is not None:
            return False
        current = self.served.loaded.version if self.served else 0
        for version in list_versions(self.base):
            if version <= current:
                return False
            if self._still_refused(version):
                continue
            try:
                await self.serve_version(version)
                return True
            except VersionRefused:
                continue  # an older new version may still load
        return False

    async def serve_version(self, version: int, pin: bool = False) -> LoadedVersion:
        """Load, check and warm `version` in a thread, then swap it in (and pin it).

        Raises:
            NoSuchVersion: no such directory.
            VersionRefused: it failed a check or its warm-up (the old version keeps serving).
        """
        async with self.lock:
            loaded = (
                self.also[version].loaded if version in self.also else await self._load(version)
            )
            if pin:
                self.pinned = version
            await self._swap_in(loaded)
            return loaded

    async def serve_also(self, wanted: set[int]) -> None:
        """Serve the `wanted` versions beside the default one (an experiment's variants), each
        loaded, checked and given its live state like the default, until they are wanted no
        more. Nothing changes when one of them cannot be served.

        Raises:
            ModelNotReady: no default version serves yet.
            NoSuchVersion, VersionRefused: as `serve_version`.
        """
        async with self.lock:
            if self.served is None:
                raise ModelNotReady("no model loaded yet; an experiment needs a served version")
            need = wanted - {self.served.loaded.version}
            kept = {v: s.loaded for v, s in self.also.items() if v in need}
            for version in sorted(need - set(kept)):
                kept[version] = await self._load(version)
            if set(kept) == set(self.also):
                return
            lives = await self.attach([self.served.loaded, *kept.values()])
            self.also = {
                v: ServedVersion(loaded, None, live)
                for (v, loaded), live in zip(kept.items(), lives[1:], strict=True)
            }
            log.info("serving beside version %s: %s", self.served.loaded.version, sorted(self.also))

    async def _load(self, version: int) -> LoadedVersion:
        path = self.base / str(version)
        if not path.is_dir():
            raise NoSuchVersion(f"no version {version} of {self.settings.model_name}")
        try:
            loaded = await asyncio.to_thread(
                load_version, path, self.settings.ann, self.settings.predict_from
            )
        except Exception as err:  # ArtifactError, or anything TensorFlow raises on bad files
            reason = str(err) if isinstance(err, ArtifactError) else f"{path}: {err!r}"
            self.refused[version] = (_mtime(path), reason)
            self.metrics.versions_refused.set(len(self.refused))
            log.error("version %s refused, still serving the old one: %s", version, reason)
            raise VersionRefused(version, self.public(reason)) from None
        self.refused.pop(version, None)
        self.metrics.versions_refused.set(len(self.refused))
        return loaded

    async def unpin_and_swap(self) -> bool:
        """Follow the newest version again (or RECSYS_MODEL_VERSION's); retry refused ones. The
        other workers do the same at their next poll."""
        async with self.choosing:
            self.pinned = self.settings.model_version
            self.reloads += 1
            self.refused.clear()
            self.metrics.versions_refused.set(len(self.refused))
            await self.control.write(Choice(None, self.reloads))
            pinned, served = self.pinned, self.served
            if pinned is not None and served and served.loaded.version != pinned:
                await self.serve_version(pinned)
                return True
            return await self.swap_to_newest()

    async def _swap_in(self, loaded: LoadedVersion) -> None:
        beside = {v: s for v, s in self.also.items() if v != loaded.version}
        live, *lives = await self.attach([loaded, *(s.loaded for s in beside.values())])
        self.also = {
            v: ServedVersion(s.loaded, None, other)
            for (v, s), other in zip(beside.items(), lives, strict=True)
        }
        batcher = None
        if self.settings.predict_batching and loaded.predict_from == "savedmodel":
            batcher = PredictBatcher(
                loaded.predict_ratings,
                self.settings.predict_max_batch_size,
                self.settings.predict_batch_timeout_micros / 1e6,
                self.metrics.observe_batch,
            )
            batcher.start()
        old = self.served
        self.served = ServedVersion(loaded, batcher, live)  # the swap
        for listener in self.on_swap:
            listener(loaded)
        self.metrics.model.labels(loaded.name).set(loaded.version)
        log.info(
            "serving %s version %s from %s (/predict from the %s)",
            loaded.name,
            loaded.version,
            loaded.path,
            "SavedModel" if loaded.predict_from == "savedmodel" else "factors",
        )
        if old is not None and old.batcher is not None:
            await old.batcher.drain()
        if old is not None:  # the old version's objects were frozen with start-up's: let them go
            del old
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def problems(self) -> list[str]:
        """What on disk is wrong while the service keeps serving from memory (for /ready): the
        served version's directory gone, the models directory missing or unreadable."""
        found = []
        if self.served is not None and not (self.served.loaded.path / MANIFEST).is_file():
            found.append(
                f"version {self.served.loaded.version} is served from memory: its directory "
                f"{self.public(str(self.served.loaded.path))} is gone (a restart would serve "
                "another version)"
            )
        try:
            os.listdir(self.base)
        except OSError as err:
            found.append(
                f"models directory {self.public(str(self.base))} cannot be read "
                f"({err.strerror or type(err).__name__}): no new version can be found"
            )
        return found

    def refusals(self) -> dict[str, str]:
        """version -> why it is not served, as answers show it (see `public`)."""
        return {
            str(version): self.public(reason)
            for version, (_, reason) in sorted(self.refused.items(), reverse=True)
        }

    def public(self, reason: str) -> str:
        """A refusal as an answer may show it: file paths relative to the models directory,
        enough to find the file and nothing about the host's layout."""
        return reason.replace(f"{self.settings.models_dir}/", "")

    def _still_refused(self, version: int) -> bool:
        refused = self.refused.get(version)
        return refused is not None and refused[0] == _mtime(self.base / str(version))


def _mtime(path: Path) -> float:
    try:
        return (path / MANIFEST).stat().st_mtime
    except OSError:
        return 0.0
