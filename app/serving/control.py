"""The admin's choice of version, persisted where every worker reads it.

With several workers (or replicas), an admin request reaches one process. That process writes
the choice (a pinned version or none, and how many reloads were asked for) and applies it at
once; every other worker reads it at its next control poll (RECSYS_SYNC_SECONDS) and follows.
A restarted worker starts from it too, so a pin survives restarts.

Where it is kept is the composition root's choice (`Control`): the event store's control rows
(`app.events.control`), which every replica of the store reads, or a file in the data directory
(`ControlFile`: written aside and renamed into place, so a reader sees the old choice or the new
one, never half of one), which the store's control migrates once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Choice:
    pinned: int | None  # the version every worker serves; None: RECSYS_MODEL_VERSION's choice
    reloads: int  # bumped by each POST /admin/reload: workers forget their refusals

    def to_json(self) -> str:
        return json.dumps({"pinned": self.pinned, "reloads": self.reloads})

    @classmethod
    def parse(cls, raw: Any, where: str) -> Choice:
        """A choice from its JSON form.

        Raises:
            ValueError: not such a choice (the message names `where` it was read).
        """
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a JSON object")
        pinned = raw.get("pinned")
        reloads = raw.get("reloads", 0)
        if not (pinned is None or (isinstance(pinned, int) and pinned >= 1)):
            raise ValueError(f"{where}: 'pinned' must be a version number or null: {pinned!r}")
        if not isinstance(reloads, int):
            raise ValueError(f"{where}: 'reloads' must be an integer: {reloads!r}")
        return cls(pinned, reloads)


class Control(Protocol):
    """Where the admin's choice lives. Both raise ValueError for a choice that cannot be read
    (naming where), and read raises OSError or `app.errors.ServiceError` when its home cannot
    be reached."""

    async def read(self) -> Choice | None: ...

    async def write(self, choice: Choice) -> None: ...


class ControlFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read_now(self) -> Choice | None:
        """The persisted choice; None when no admin has chosen.

        Raises:
            ValueError: the file is not such a choice (the message names it).
            OSError: it cannot be read.
        """
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.path}: not JSON ({err})") from None
        return Choice.parse(raw, str(self.path))

    async def read(self) -> Choice | None:
        return self.read_now()

    async def write(self, choice: Choice) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        staged.write_text(choice.to_json())
        os.replace(staged, self.path)
