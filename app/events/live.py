"""The one owner of what a worker knows beyond its served versions: the applied event log
(`app.events.applied`) and one view per served version (`app.events.view`) that follows it.

Changes come in on the event loop, in the store's order (polls) or at once after their commit
(this worker's writes): `apply` applies them to the log and every view follows in the same step,
so no request sees a view behind its log. Serving another set of versions replaces the log and
the views whole (`install`), once they were built off the loop from a fresh read of the store
(`app.events.service`), so a swap in either direction leaves what a restart serving the same
versions builds. The changes applied while such a read runs are kept (`replay`) and applied to
the new log as it is installed: nothing applied in between is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.events.applied import AppliedLog
from app.events.changes import Change
from app.events.view import VersionView
from app.serving.loader import LoadedVersion


@dataclass(frozen=True)
class Due:
    """Fold-ins one view owes in the fold-in thread: a new view's users (`users`), new items
    that were rated (`items`). A user whose ratings change is solved at their next read
    instead (`VersionView.stale`)."""

    view: VersionView
    users: frozenset[str]
    items: frozenset[str]


@dataclass
class LiveVersion:
    """The live state of one served version, as the version owner holds it beside the loaded
    version: requests take `view` once and rank with it. A rebuild for the same versions (the
    store reachable again after a swap it missed) replaces `view`; `loaded` never changes."""

    loaded: LoadedVersion
    view: VersionView


class LiveState:
    def __init__(self) -> None:
        self.log = AppliedLog()
        self.served: dict[int, LiveVersion] = {}  # version -> its live state
        self.replay: list[Change] | None = None  # while a rebuild reads the store

    @property
    def views(self) -> list[VersionView]:
        return [served.view for served in self.served.values()]

    def apply(self, changes: Iterable[Change], through: int | None = None) -> list[Due]:
        """Apply changes to the log (see `AppliedLog.apply`) and let every view follow; the
        fold-ins due."""
        changes = list(changes)
        if self.replay is not None:
            self.replay.extend(changes)
        effects = self.log.apply(changes, through)
        if not effects:
            return []
        due = []
        for view in self.views:
            items = view.follow(effects)
            if items:
                due.append(Due(view, frozenset(), frozenset(items)))
        return due

    def start_replay(self) -> None:
        """From now on, remember what is applied: a new log is being read."""
        self.replay = []

    def stop_replay(self) -> None:
        self.replay = None

    def install(self, log: AppliedLog, views: list[VersionView]) -> list[LiveVersion]:
        """Serve `views` over `log` (built from a read of the store that began at
        `start_replay`, or over the current log), then apply to them what was applied to the old
        log meanwhile, as this worker's own writes (the next poll reads past them). Returns each
        view's live version: the one already serving its loaded version, or a new one. The
        fold-ins the replay made due are the views' `pending` users."""
        replay, self.replay = self.replay or [], None
        served = {}
        for view in views:
            current = self.served.get(view.version)
            if current is not None and current.loaded is view.loaded:
                current.view = view
            else:
                current = LiveVersion(view.loaded, view)
            served[view.version] = current
        self.log, self.served = log, served
        self.apply(replay)
        return list(served.values())
