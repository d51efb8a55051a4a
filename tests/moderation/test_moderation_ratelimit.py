"""The shared rate-limit gate in Redis (database 10): budget accounting, the reserve, paced slots."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest
import redis

from modwatch.mastodon.client import RateLimit
from modwatch.moderation import ratelimit
from modwatch.moderation.ratelimit import GATE_KEY, RESERVE_SHARE, SLOT_MARGIN_SECONDS

from isolation import redis_db_url

REDIS_URL = redis_db_url(10)
NOW = 1_700_000_000.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


@pytest.fixture
def gate():
    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()


def acquire(gate, priority=False, book=True, now=NOW):
    return ratelimit.acquire(priority=priority, book=book, now=now, connection=gate)


def observe(gate, limit, remaining, reset, now=NOW):
    ratelimit.observe(RateLimit(limit, remaining, at(reset)), now=now, connection=gate)


def stored(gate) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in gate.hgetall(GATE_KEY).items()}


def test_an_unknown_budget_lets_work_through_and_an_answer_without_headers_changes_nothing(gate):
    assert acquire(gate) is None
    ratelimit.observe(RateLimit(None, None, None), now=NOW, connection=gate)
    assert gate.exists(GATE_KEY) == 0


def test_backlog_stops_at_the_reserve_and_priority_work_spends_it(gate):
    observe(gate, limit=40, remaining=4, reset=NOW + 40)  # a whole window ahead: the whole reserve
    assert 40 * RESERVE_SHARE == 2
    assert acquire(gate) is None and acquire(gate) is None  # 4 -> 2
    refused = acquire(gate)
    assert refused is not None and refused.reset_at == at(NOW + 40) and refused.until >= at(NOW + 40)
    assert acquire(gate, priority=True) is None and acquire(gate, priority=True) is None  # the reserve: 2 -> 0
    assert acquire(gate, priority=True) is not None
    assert stored(gate)["remaining"] == 0


def test_the_reserve_holds_back_only_its_share_of_what_is_left_of_the_window(gate):
    observe(gate, limit=40, remaining=2, reset=NOW + 40)
    assert acquire(gate) is not None  # a whole window ahead: 2 held back
    assert acquire(gate, now=NOW + 20) is None  # half a window ahead: 1 held back, 2 -> 1
    assert acquire(gate, now=NOW + 20) is not None
    assert acquire(gate, now=NOW + 39) is None  # the window's last second: the backlog takes what is left
    assert stored(gate)["remaining"] == 0


def test_a_backlog_is_paced_a_window_budget_per_window_from_the_reset_on(gate):
    limit, reset = 40, NOW + 5
    ratelimit.exhausted(RateLimit(limit, 39, None), at(reset), now=NOW, connection=gate)
    slots = [acquire(gate).until.timestamp() for _ in range(100)]

    assert slots == sorted(slots) and min(slots) == reset
    windows = Counter(int((slot - reset) // limit) for slot in slots)  # windows of `limit` seconds
    assert windows == {0: limit, 1: limit, 2: 20}  # none skipped, none over its budget
    # Evenly spread, and early enough that RQ starts each job in its slot's window.
    gaps = {round(later - earlier, 6) for earlier, later in zip(slots, slots[1:]) if (later - reset) % limit}
    assert gaps == {round((limit - SLOT_MARGIN_SECONDS) / limit, 6)}
    assert all((slot - reset) % limit <= limit - SLOT_MARGIN_SECONDS for slot in slots)


def test_priority_work_refused_gets_a_slot_from_the_reset_not_behind_the_backlog(gate):
    ratelimit.exhausted(RateLimit(30, 0, None), at(NOW + 10), now=NOW, connection=gate)
    backlog = [acquire(gate).until.timestamp() for _ in range(90)]  # three windows booked
    priority = [acquire(gate, priority=True).until.timestamp() for _ in range(2)]

    assert max(backlog) > NOW + 70
    assert priority == pytest.approx([NOW + 10, NOW + 10 + (30 - SLOT_MARGIN_SECONDS) / 30])


def test_a_429_closes_the_gate_whatever_its_remaining_header_said(gate):
    observe(gate, limit=300, remaining=250, reset=NOW + 60)
    ratelimit.exhausted(RateLimit(300, 250, at(NOW + 60)), at(NOW + 60), now=NOW, connection=gate)
    assert acquire(gate, priority=True, book=False).reset_at == at(NOW + 60)


def test_a_poll_refused_takes_no_slot(gate):
    ratelimit.exhausted(RateLimit(30, 0, None), at(NOW + 10), now=NOW, connection=gate)
    assert acquire(gate, priority=True, book=False).until == at(NOW + 10)
    assert set(stored(gate)) == {"limit", "remaining", "reset"}


def test_after_the_reset_a_fresh_budget_is_counted_on_the_same_grid(gate):
    observe(gate, limit=30, remaining=0, reset=NOW + 10)
    assert acquire(gate, now=NOW + 12) is None
    state = stored(gate)
    assert state["remaining"] == 29 and state["reset"] == NOW + 40


def test_answers_of_one_window_keep_the_lower_remaining_and_a_finished_window_is_ignored(gate):
    observe(gate, limit=300, remaining=100, reset=NOW + 60)
    observe(gate, limit=300, remaining=120, reset=NOW + 60)  # an older answer, arriving late
    assert stored(gate)["remaining"] == 100
    observe(gate, limit=300, remaining=5, reset=NOW - 1)  # from a window already over
    assert stored(gate)["remaining"] == 100
    observe(gate, limit=300, remaining=299, reset=NOW + 360, now=NOW + 61)  # the next window
    assert stored(gate)["remaining"] == 299 and stored(gate)["reset"] == NOW + 360


def test_rq_never_runs_a_slot_early():
    assert ratelimit.next_second(at(NOW + 0.2)) == at(NOW + 1)
    assert ratelimit.next_second(at(NOW)) == at(NOW)
