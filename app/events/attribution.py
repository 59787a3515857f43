"""Impressions written to the store, and ratings attributed to them, inside the event store's
write transaction (`app.events.store`).

A rating that names a recommendation id (`POST /events`' `recommendation_id`) is attributed to
that impression when the impression held its item (and was shown to that user, or to nobody in
particular: /similar and /popular without a user). A rating that names none is attributed to
its user's most recent impression that held the item within the attribution window
(RECSYS_ATTRIBUTION_WINDOW), so clients that send nothing extra are measured too. Either way the
hit counts for the version and variant that placed the item: the impression's, or for an
interleaved answer the variant credited with that position. Each rating is attributed at most
once, when it is stored; a rating that answers nothing shown is not attributed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ARRAY, Connection, String, any_, bindparam, delete, insert, select

from app.events.changes import Change, Impression
from artifact.eventlog import attributions, impressions

CHUNK = 500  # ids per IN (...) and rows per INSERT


@dataclass(frozen=True)
class Hit:
    """One attributed rating, as the service counts it (`recsys_hits_total`)."""

    version: int
    experiment: str | None
    variant: str | None
    rating: float
    explicit: bool


def write_impressions(conn: Connection, dialect: str, shown: Sequence[Impression]) -> None:
    """Insert impressions (a multi-row INSERT per chunk, straight to the driver); one already
    stored (the same recommendation id: a retried flush) is kept once."""
    mark = "%s" if dialect == "postgresql" else "?"
    for start in range(0, len(shown), CHUNK):
        chunk = shown[start : start + CHUNK]
        values = ",".join(["(" + ",".join([mark] * 9) + ")"] * len(chunk))
        sql = (
            "INSERT INTO impressions (recommendation_id, user_id, route, version, experiment, "
            f"variant, items, credits, ts) VALUES {values} "
            "ON CONFLICT (recommendation_id) DO NOTHING"
        )
        params: list[Any] = []
        for i in chunk:
            credits = (
                None if i.credits is None else orjson.dumps([list(c) for c in i.credits]).decode()
            )
            params += [
                i.recommendation_id, i.user_id, i.route, i.version, i.experiment, i.variant,
                orjson.dumps(list(i.items)).decode(), credits, i.ts,
            ]  # fmt: skip
        conn.exec_driver_sql(sql, tuple(params))


@dataclass(frozen=True)
class _Shown:
    id: int
    user_id: str | None
    version: int
    experiment: str | None
    variant: str | None
    items: list[str]
    credits: list[list[Any]] | None  # [variant, version] per position


def _shown(row: Any) -> _Shown:
    r = row._mapping
    credits = orjson.loads(r["credits"]) if r["credits"] else None
    return _Shown(
        int(r["id"]), r["user_id"], int(r["version"]), r["experiment"], r["variant"],
        orjson.loads(r["items"]), credits,
    )  # fmt: skip


def attribute(
    conn: Connection, stored: Sequence[tuple[Change, str | None]], window: float, now: float
) -> list[Hit | None]:
    """Attribute stored ratings (each with the recommendation id its event named, or None) to
    impressions; write the attributions. Returns each rating's hit (None: not attributed). The
    store calls it once per transaction, for every request in it: a query per request was 15%
    of the single-event write path (bench/README.md, "Ingestion")."""
    if not stored:
        return []
    columns = (
        impressions.c.id, impressions.c.recommendation_id, impressions.c.user_id,
        impressions.c.version, impressions.c.experiment, impressions.c.variant,
        impressions.c["items"], impressions.c.credits,  # .items is the collection's method
    )  # fmt: skip
    named: dict[str, _Shown] = {}
    wanted = sorted({rid for _, rid in stored if rid})
    for start in range(0, len(wanted), CHUNK):
        chosen = select(*columns).where(
            _among(conn, impressions.c.recommendation_id, wanted[start : start + CHUNK])
        )
        named.update({row.recommendation_id: _shown(row) for row in conn.execute(chosen)})
    recent: dict[str, list[_Shown]] = {}
    users = sorted({c.user_id for c, rid in stored if not rid and c.user_id is not None})
    for start in range(0, len(users), CHUNK):
        chosen = (
            select(*columns)
            .where(_among(conn, impressions.c.user_id, users[start : start + CHUNK]))
            .where(impressions.c.ts >= now - window)
            .order_by(impressions.c.ts.desc(), impressions.c.id.desc())
        )
        for row in conn.execute(chosen):
            recent.setdefault(row.user_id, []).append(_shown(row))
    rows: list[dict[str, Any]] = []
    hits: list[Hit | None] = []
    for change, rid in stored:
        hits.append(None)
        if rid:
            found = named.get(rid)
            candidates = [found] if found and found.user_id in (None, change.user_id) else []
        else:
            candidates = recent.get(change.user_id or "", [])
        for shown in candidates:
            if change.item_id not in shown.items:
                continue
            position = shown.items.index(change.item_id)
            version, variant = shown.version, shown.variant
            if shown.credits:  # interleaved: the variant that placed the item
                variant, version = str(shown.credits[position][0]), int(shown.credits[position][1])
            assert change.rating is not None
            rows.append(
                {
                    "log_id": change.id, "impression_id": shown.id, "user_id": change.user_id,
                    "item_id": change.item_id, "position": position, "version": version,
                    "experiment": shown.experiment, "variant": variant,
                    "rating": change.rating, "explicit": bool(rid), "ts": now,
                }
            )  # fmt: skip
            hits[-1] = Hit(version, shown.experiment, variant, change.rating, bool(rid))
            break
    for start in range(0, len(rows), CHUNK):
        conn.execute(insert(attributions), rows[start : start + CHUNK])
    return hits


def _among(conn: Connection, column: Any, values: list[str]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(array)`, one placeholder: psycopg
    parses a long statement's placeholders afresh on every execution."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam("among", values, type_=ARRAY(String)))
    return column.in_(values)


def forget(conn: Connection, user_id: str) -> None:
    """A forgotten user's impressions and attributions leave the store with their ratings."""
    conn.execute(delete(attributions).where(attributions.c.user_id == user_id))
    conn.execute(delete(impressions).where(impressions.c.user_id == user_id))
