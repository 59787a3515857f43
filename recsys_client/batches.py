"""`send_events` without I/O: a generator that yields the calls to make and is sent their
answers (or thrown their errors), so the blocking and the async client share one rule.

Batches hold at most the service's limit (POST /events' `maxItems` in the served description).
A batch the service finds too large (413) is split in two; with `skip_invalid`, an event it
refuses (422 naming `events.<i>`) is left out, counted as refused, and the rest sent again.
Every event carries an `event_id`, so a batch that is retried after a lost answer is stored
once (the service counts it as duplicates)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from recsys_client import calls
from recsys_client import models as m
from recsys_client.errors import Invalid, TooLarge


@dataclass
class Refusal:
    index: int  # the event's position in what was given
    field: str | None
    reason: str


@dataclass
class EventsSummary:
    accepted: int = 0
    duplicates: int = 0
    attributed: int = 0
    refused: list[Refusal] = field(default_factory=list)
    batches: int = 0

    @property
    def sent(self) -> int:
        return self.accepted + self.duplicates + len(self.refused)


Progress = Callable[[EventsSummary], None]
Plan = Generator[calls.Call[Any], Any, EventsSummary]


def plan(
    events: Iterable[m.Event | Mapping[str, Any]],
    limit: int,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> Plan:
    summary = EventsSummary()
    prepared = _prepared(events, skip_invalid, summary)
    while chunk := list(islice(prepared, limit)):
        yield from _send(chunk, skip_invalid, summary)
        if progress is not None:
            progress(summary)
    return summary


def _prepared(
    events: Iterable[m.Event | Mapping[str, Any]], skip_invalid: bool, summary: EventsSummary
) -> Iterable[tuple[int, dict[str, Any]]]:
    for i, event in enumerate(events):
        try:
            body = calls.event_body(event, i)
        except Invalid as err:
            if not skip_invalid:
                raise
            summary.refused.append(Refusal(i, _field(err), err.errors[0]["msg"]))
            continue
        yield i, body


def _send(
    chunk: list[tuple[int, dict[str, Any]]], skip_invalid: bool, summary: EventsSummary
) -> Generator[calls.Call[Any], Any, None]:
    while chunk:
        try:
            answer: m.EventsResponse = yield calls.events([body for _, body in chunk])
        except TooLarge:
            if len(chunk) == 1:
                raise
            half = len(chunk) // 2
            yield from _send(chunk[:half], skip_invalid, summary)
            yield from _send(chunk[half:], skip_invalid, summary)
            return
        except Invalid as err:
            position = _event_position(err)
            if not skip_invalid or position is None or position >= len(chunk):
                raise
            index, _ = chunk.pop(position)
            summary.refused.append(Refusal(index, _field(err), err.errors[0].get("msg", "")))
            continue
        summary.batches += 1
        summary.accepted += answer.accepted
        summary.duplicates += answer.duplicates
        summary.attributed += answer.attributed
        return


def _event_position(err: Invalid) -> int | None:
    loc = err.errors[0].get("loc", []) if err.errors else []
    if len(loc) >= 3 and loc[:2] == ["body", "events"] and isinstance(loc[2], int):
        return loc[2]
    return None


def _field(err: Invalid) -> str | None:
    loc = err.errors[0].get("loc", []) if err.errors else []
    return ".".join(str(p) for p in loc[3:]) or None
