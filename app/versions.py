"""Which version is served, and swapping it without downtime.

The served version and its /predict batcher live together in one `Active`, replaced by a single
assignment on the event loop. A handler reads `app.state.active` once and works on that object
to the end, so requests in flight finish on the version they started with. A new version is
loaded, checked and warmed up (`load_version`) in a thread while the old one keeps serving; one
that fails is logged with the reason and skipped until it changes on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.batcher import PredictBatcher
from app.observability import Metrics
from app.registry import (
    ArtifactError,
    Bundle,
    NoServableVersion,
    list_versions,
    load_served,
    load_version,
)
from app.settings import Settings

log = logging.getLogger("app")


@dataclass(frozen=True)
class Active:
    bundle: Bundle
    batcher: PredictBatcher | None


class VersionRefused(Exception):
    """A version that cannot be served; the message names the file and the reason."""


class NoSuchVersion(Exception):
    pass


class ModelManager:
    def __init__(self, state: Any, settings: Settings, metrics: Metrics):
        self.state, self.settings, self.metrics = state, settings, metrics
        self.base = settings.models_dir / settings.model_name
        self.pinned: int | None = settings.model_version
        self.refused: dict[int, tuple[float, str]] = {}  # version -> (manifest mtime, reason)
        self.lock = asyncio.Lock()
        self.poller: asyncio.Task | None = None

    async def start(self) -> None:
        """Serve the pinned or newest loadable version, then poll. With none: /ready says 503
        and the poller waits for one, or, with `require_model`, startup fails (the process exits
        non-zero: an orchestrator sees the failure instead of a pod that never gets ready).

        Raises:
            NoServableVersion: nothing loads and `require_model` is set.
        """
        refused: dict[int, str] = {}
        try:
            bundle = load_served(
                self.settings.models_dir, self.settings.model_name, self.pinned, refused
            )
        except NoServableVersion as err:
            if self.settings.require_model:
                log.error("no model to serve, exiting (RECSYS_REQUIRE_MODEL): %s", err)
                raise
            log.error("no model to serve, /ready answers 503: %s", err)
        else:
            await self._activate(bundle)
        for version, reason in refused.items():  # not retried until their manifest changes
            self.refused[version] = (_mtime(self.base / str(version)), reason)
        if self.settings.poll_seconds > 0:
            self.poller = asyncio.get_running_loop().create_task(self._poll(), name="poll")

    async def stop(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller
        active: Active | None = self.state.active
        if active is not None and active.batcher is not None:
            await active.batcher.stop()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                await self.check()
            except Exception:  # the poller must survive anything; the old version keeps serving
                log.exception("version check failed")

    async def check(self) -> bool:
        """Swap to the newest version if it is newer than the served one and not refused (and
        nothing is pinned). True when a new version now serves."""
        if self.pinned is not None:
            return False
        active: Active | None = self.state.active
        current = active.bundle.version if active else 0
        for version in list_versions(self.base):
            if version <= current:
                return False
            if self._still_refused(version):
                continue
            try:
                await self.activate(version)
                return True
            except VersionRefused:
                continue  # an older new version may still load
        return False

    async def activate(self, version: int, pin: bool = False) -> Bundle:
        """Load, check and warm `version` in a thread, then swap it in.

        Raises:
            NoSuchVersion: no such directory.
            VersionRefused: it failed a check or its warm-up (the old version keeps serving).
        """
        path = self.base / str(version)
        if not path.is_dir():
            raise NoSuchVersion(f"no version {version} under {self.base}")
        async with self.lock:
            try:
                bundle = await asyncio.to_thread(load_version, path)
            except Exception as err:  # ArtifactError, or anything TensorFlow raises on bad files
                reason = str(err) if isinstance(err, ArtifactError) else f"{path}: {err!r}"
                self.refused[version] = (_mtime(path), reason)
                log.error("version %s refused, still serving the old one: %s", version, reason)
                raise VersionRefused(reason) from None
            self.refused.pop(version, None)
            if pin:
                self.pinned = version
            await self._activate(bundle)
            return bundle

    async def unpin_and_check(self) -> bool:
        """Follow the newest version again; retry refused ones."""
        self.pinned = self.settings.model_version
        self.refused.clear()
        return await self.check()

    async def _activate(self, bundle: Bundle) -> None:
        batcher = None
        if self.settings.predict_batching:
            batcher = PredictBatcher(
                bundle.predict_ratings,
                self.settings.predict_max_batch_size,
                self.settings.predict_batch_timeout_micros / 1e6,
                self.metrics.observe_batch,
            )
            batcher.start()
        old: Active | None = self.state.active
        self.state.active = Active(bundle, batcher)  # the swap
        self.metrics.model.labels(bundle.name).set(bundle.version)
        log.info("serving %s version %s from %s", bundle.name, bundle.version, bundle.path)
        if old is not None and old.batcher is not None:
            await old.batcher.close()

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
        return (path / "manifest.json").stat().st_mtime
    except OSError:
        return 0.0
