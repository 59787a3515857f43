"""The live state's rules, on hand-made changes: latest by (timestamp, id) wins whatever order
changes arrive in, each change applies once, a forget drops what came before it."""

from __future__ import annotations

from app.events.live import LiveState, Rated
from app.events.store import Change


def rating(id_: int, user: str, item: str, value: float, ts: int) -> Change:
    return Change(id_, "rating", user, item, value, ts)


def test_own_writes_apply_at_once_and_the_poll_moves_the_cursor_past_them():
    live = LiveState()
    live.apply([rating(3, "u", "a", 4, 100)], contiguous=False)  # this worker's write
    assert live.ratings["u"]["a"] == Rated(4, 100, 3) and live.cursor == 0
    # The poll brings another worker's earlier change (id 2, an older rating) and ours again.
    live.apply([rating(2, "u", "a", 1, 50), rating(3, "u", "a", 4, 100)], contiguous=True)
    assert live.ratings["u"]["a"] == Rated(4, 100, 3)
    assert live.cursor == 3 and live.ahead == set()


def test_equal_timestamps_are_settled_by_log_id():
    live = LiveState()
    live.apply([rating(5, "u", "a", 2, 100)], contiguous=False)
    live.apply([rating(4, "u", "a", 5, 100), rating(5, "u", "a", 2, 100)], contiguous=True)
    assert live.ratings["u"]["a"].rating == 2


def test_a_forget_drops_the_users_ratings_and_ignores_older_ones_arriving_late():
    live = LiveState()
    live.apply([rating(1, "u", "a", 4, 10), Change(3, "forget", user_id="u")], contiguous=False)
    assert "u" not in live.ratings and live.forgotten == {"u": 3}
    live.apply([rating(2, "u", "b", 4, 11)], contiguous=True)  # stored before the forget
    assert "u" not in live.ratings
    live.apply([rating(4, "u", "c", 3, 12)], contiguous=True)  # after it: a fresh start
    assert list(live.ratings["u"]) == ["c"]
