"""The applied log's rules, on hand-made changes: latest by (timestamp, id) wins whatever order
changes arrive in, each change applies once, a forget drops what came before it."""

from __future__ import annotations

from app.events.applied import AppliedLog
from app.events.changes import Change


def rating(id_: int, user: str, item: str, value: float, ts: int) -> Change:
    return Change(id_, "rating", user, item, value, ts)


def test_own_writes_apply_at_once_and_the_poll_moves_the_cursor_past_them():
    live = AppliedLog()
    live.apply([rating(3, "u", "a", 4, 100)])  # this worker's write
    assert live.ratings["u"]["a"] == (4, 100, 3) and live.cursor == 0
    # The poll brings another worker's earlier change (id 2, an older rating), not ours again.
    live.apply([rating(2, "u", "a", 1, 50)], through=3)
    assert live.ratings["u"]["a"] == (4, 100, 3)
    assert live.cursor == 3 and live.ahead == set()


def test_equal_timestamps_are_settled_by_log_id():
    live = AppliedLog()
    live.apply([rating(5, "u", "a", 2, 100)])
    live.apply([rating(4, "u", "a", 5, 100)], through=5)
    assert live.ratings["u"]["a"][0] == 2


def test_a_forget_drops_the_users_ratings_and_ignores_older_ones_arriving_late():
    live = AppliedLog()
    live.apply([rating(1, "u", "a", 4, 10), Change(3, "forget", user_id="u")])
    assert "u" not in live.ratings and live.forgotten == {"u": 3}
    live.apply([rating(2, "u", "b", 4, 11)], through=3)  # stored before the forget
    assert "u" not in live.ratings
    live.apply([rating(4, "u", "c", 3, 12)], through=4)  # after it: a fresh start
    assert list(live.ratings["u"]) == ["c"]


def test_the_live_state_leaves_the_garbage_collector_alone():
    """Full collections walk every tracked object: the live state grows with every event, so it
    is kept in forms CPython stops tracking (p99 of POST /events fell 10x)."""
    import gc

    live = AppliedLog()
    live.apply([rating(i, f"u{i % 50}", str(i), 4, i) for i in range(1, 2001)])
    gc.collect()
    assert not any(gc.is_tracked(r) for items in live.ratings.values() for r in items.values())
    assert not any(gc.is_tracked(items) for items in live.ratings.values())
