"""The admin's choice of version, persisted where every worker's poller reads it.

With several workers (or replicas sharing the data directory), an admin request reaches one
process. That process writes the choice here (a pinned version or none, and how many reloads
were asked for) and applies it at once; every other worker reads the file on its next version
poll (RECSYS_POLL_SECONDS) and follows. A restarted worker starts from it too, so a pin survives
restarts. The file is written aside and renamed into place: a reader sees the old choice or the
new one, never half of one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Choice:
    pinned: int | None  # the version every worker serves; None: RECSYS_MODEL_VERSION's choice
    reloads: int  # bumped by each POST /admin/reload: workers forget their refusals


class ControlFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Choice | None:
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
        if not isinstance(raw, dict):
            raise ValueError(f"{self.path}: expected a JSON object")
        pinned = raw.get("pinned")
        reloads = raw.get("reloads", 0)
        if not (pinned is None or (isinstance(pinned, int) and pinned >= 1)):
            raise ValueError(f"{self.path}: 'pinned' must be a version number or null: {pinned!r}")
        if not isinstance(reloads, int):
            raise ValueError(f"{self.path}: 'reloads' must be an integer: {reloads!r}")
        return Choice(pinned, reloads)

    def write(self, choice: Choice) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        staged.write_text(json.dumps({"pinned": choice.pinned, "reloads": choice.reloads}))
        os.replace(staged, self.path)
