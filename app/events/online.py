"""What the store says of how answers did, counted in SQL over impressions and attributions
(`GET /admin/online`, the experiments' reports; `app.experiments.report` makes rates of them).

Per (version, experiment, variant) over [since, until): impressions and their users; the
impressions that could be hit (one got a hit, or its user rated anything within the attribution
window after it: a user who never came back could not have rated what they were shown); the
impressions hit and the hits, with their ratings' sum, sum of squares and how many were 4 or
more; the distinct items shown (over the newest `COVERAGE_SAMPLE` impressions). Interleaved
impressions (which show two variants at once) are counted per experiment instead, with each
impression's hits per variant (`interleaved`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from sqlalchemy import Connection, text

COVERAGE_SAMPLE = 100_000

Key = tuple[int, str | None, str | None]  # version, experiment, variant


@dataclass
class Counts:
    impressions: int = 0
    users: int = 0
    could_be_hit: int = 0
    hit_impressions: int = 0
    hits: int = 0
    rating_sum: float = 0.0
    rating_squares: float = 0.0
    rated_4_plus: int = 0
    items_shown: set[str] = field(default_factory=set)
    coverage_sample: int = 0


WINDOW_FILTER = "i.ts >= :since AND i.ts < :until"
COULD_BE_HIT = """(EXISTS (SELECT 1 FROM attributions h WHERE h.impression_id = i.id)
    OR (i.user_id IS NOT NULL AND EXISTS (SELECT 1 FROM log e WHERE e.user_id = i.user_id
        AND e.kind = 'rating' AND e.received >= i.ts AND e.received <= i.ts + :window)))"""


def groups(conn: Connection, since: float, until: float, window: float) -> dict[Key, Counts]:
    """Counts per (version, experiment, variant) of the answers given in [since, until) that
    were not interleaved."""
    params = {"since": since, "until": until, "window": window}
    out: dict[Key, Counts] = {}

    def at(row: tuple) -> Counts:  # type: ignore[type-arg]
        return out.setdefault((int(row[0]), row[1], row[2]), Counts())

    plain = f"{WINDOW_FILTER} AND i.credits IS NULL"
    for row in conn.execute(
        text(
            "SELECT i.version, i.experiment, i.variant, count(*), count(DISTINCT i.user_id) "
            f"FROM impressions i WHERE {plain} GROUP BY i.version, i.experiment, i.variant"
        ),
        params,
    ):
        counts = at(tuple(row))
        counts.impressions, counts.users = int(row[3]), int(row[4])
    for row in conn.execute(
        text(
            "SELECT i.version, i.experiment, i.variant, count(*) FROM impressions i "
            f"WHERE {plain} AND {COULD_BE_HIT} GROUP BY i.version, i.experiment, i.variant"
        ),
        params,
    ):
        at(tuple(row)).could_be_hit = int(row[3])
    for row in conn.execute(
        text(
            "SELECT a.version, a.experiment, a.variant, count(DISTINCT a.impression_id), "
            "count(*), sum(a.rating), sum(a.rating * a.rating), "
            "sum(CASE WHEN a.rating >= 4 THEN 1 ELSE 0 END) "
            "FROM attributions a JOIN impressions i ON i.id = a.impression_id "
            f"WHERE {plain} GROUP BY a.version, a.experiment, a.variant"
        ),
        params,
    ):
        counts = at(tuple(row))
        counts.hit_impressions, counts.hits = int(row[3]), int(row[4])
        counts.rating_sum, counts.rating_squares = float(row[5]), float(row[6])
        counts.rated_4_plus = int(row[7])
    for row in conn.execute(
        text(
            "SELECT i.version, i.experiment, i.variant, i.items FROM impressions i "
            f"WHERE {plain} ORDER BY i.id DESC LIMIT {COVERAGE_SAMPLE}"
        ),
        params,
    ):
        counts = at(tuple(row))
        counts.items_shown.update(orjson.loads(row[3]))
        counts.coverage_sample += 1
    return out


@dataclass
class Interleaved:
    """One interleaved experiment's answers: how many, how many could be hit, and per variant
    the hits it was credited with and the impressions it won (more hits than the other)."""

    impressions: int = 0
    could_be_hit: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    hit_impressions: dict[str, int] = field(default_factory=dict)
    wins: dict[str, int] = field(default_factory=dict)
    # Per user, the impressions each variant won: the experiment's unit is the user.
    user_wins: dict[str, dict[str, int]] = field(default_factory=dict)
    rating_sum: dict[str, float] = field(default_factory=dict)
    rating_squares: dict[str, float] = field(default_factory=dict)
    rated_4_plus: dict[str, int] = field(default_factory=dict)


def interleaved(
    conn: Connection, experiment: str, since: float, until: float, window: float
) -> Interleaved:
    params = {"since": since, "until": until, "window": window, "name": experiment}
    mine = f"{WINDOW_FILTER} AND i.credits IS NOT NULL AND i.experiment = :name"
    out = Interleaved()
    out.impressions = int(
        conn.execute(text(f"SELECT count(*) FROM impressions i WHERE {mine}"), params).scalar_one()
    )
    out.could_be_hit = int(
        conn.execute(
            text(f"SELECT count(*) FROM impressions i WHERE {mine} AND {COULD_BE_HIT}"), params
        ).scalar_one()
    )
    per_impression: dict[int, dict[str, int]] = {}
    owner: dict[int, str] = {}
    for row in conn.execute(
        text(
            "SELECT a.impression_id, a.variant, count(*), sum(a.rating), sum(a.rating * a.rating), "
            "sum(CASE WHEN a.rating >= 4 THEN 1 ELSE 0 END), i.user_id "
            f"FROM attributions a JOIN impressions i ON i.id = a.impression_id WHERE {mine} "
            "GROUP BY a.impression_id, a.variant, i.user_id"
        ),
        params,
    ):
        variant, hits = str(row[1]), int(row[2])
        per_impression.setdefault(int(row[0]), {})[variant] = hits
        owner[int(row[0])] = str(row[6])
        out.hits[variant] = out.hits.get(variant, 0) + hits
        out.hit_impressions[variant] = out.hit_impressions.get(variant, 0) + 1
        out.rating_sum[variant] = out.rating_sum.get(variant, 0.0) + float(row[3])
        out.rating_squares[variant] = out.rating_squares.get(variant, 0.0) + float(row[4])
        out.rated_4_plus[variant] = out.rated_4_plus.get(variant, 0) + int(row[5])
    for impression, credited in per_impression.items():
        best = max(credited.values())
        leaders = [v for v, n in credited.items() if n == best]
        if len(leaders) == 1 and (len(credited) == 1 or best > min(credited.values())):
            out.wins[leaders[0]] = out.wins.get(leaders[0], 0) + 1
            mine_won = out.user_wins.setdefault(owner[impression], {})
            mine_won[leaders[0]] = mine_won.get(leaders[0], 0) + 1
    return out


def per_user(
    conn: Connection, experiment: str, since: float, until: float, window: float
) -> dict[str, list[tuple[int, int]]]:
    """An A/B experiment's users, per variant: each user's impressions that could be hit and
    those hit (the user, whom the experiment randomised, is the unit its verdict counts)."""
    params = {"since": since, "until": until, "window": window, "name": experiment}
    out: dict[str, list[tuple[int, int]]] = {}
    for row in conn.execute(
        text(
            "SELECT i.variant, i.user_id, count(*), sum(CASE WHEN EXISTS (SELECT 1 FROM "
            "attributions a WHERE a.impression_id = i.id) THEN 1 ELSE 0 END) FROM impressions i "
            f"WHERE {WINDOW_FILTER} AND i.credits IS NULL AND i.experiment = :name "
            f"AND i.user_id IS NOT NULL AND {COULD_BE_HIT} GROUP BY i.variant, i.user_id"
        ),
        params,
    ):
        out.setdefault(str(row[0]), []).append((int(row[2]), int(row[3])))
    return out


def series(
    conn: Connection, since: float, until: float, buckets: int
) -> list[tuple[int, int, str | None, str | None, int, int]]:
    """(bucket, version, experiment, variant, impressions, impressions hit) over `buckets` equal
    slices of [since, until), for the page's charts (interleaved answers left out)."""
    step = max((until - since) / buckets, 1e-9)
    params = {"since": since, "until": until, "step": step}
    bucket = "CAST((i.ts - :since) / :step AS INTEGER)"
    shown = {
        (int(r[0]), int(r[1]), r[2], r[3]): int(r[4])
        for r in conn.execute(
            text(
                f"SELECT {bucket}, i.version, i.experiment, i.variant, count(*) FROM impressions i "
                f"WHERE {WINDOW_FILTER} AND i.credits IS NULL GROUP BY 1, 2, 3, 4"
            ),
            params,
        )
    }
    hit = {
        (int(r[0]), int(r[1]), r[2], r[3]): int(r[4])
        for r in conn.execute(
            text(
                f"SELECT {bucket}, a.version, a.experiment, a.variant, "
                "count(DISTINCT a.impression_id) "
                "FROM attributions a JOIN impressions i ON i.id = a.impression_id "
                f"WHERE {WINDOW_FILTER} AND i.credits IS NULL GROUP BY 1, 2, 3, 4"
            ),
            params,
        )
    }
    keys = sorted(set(shown) | set(hit), key=lambda k: (k[0], k[1], k[2] or "", k[3] or ""))
    return [(*k, shown.get(k, 0), hit.get(k, 0)) for k in keys]
