"""The shared rate-limit gate in Redis (database 10): budget accounting, the reserve, paced slots."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest
from prometheus_client import REGISTRY

from modwatch.mastodon.client import RateLimit
from modwatch.moderation import ratelimit
from modwatch.moderation.ratelimit import RESERVE_SHARE, SLOT_MARGIN_SECONDS
from modwatch.redis_keys import RATELIMIT_GATE_KEY

from isolation import claimed_redis_db, redis_db_url

REDIS_URL = redis_db_url(10)
NOW = 1_700_000_000.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


@pytest.fixture
def gate():
    connection = claimed_redis_db(REDIS_URL)
    yield connection
    connection.flushdb()


def acquire(gate, priority=False, book=True, now=NOW):
    return ratelimit.acquire(priority=priority, book=book, now=now, connection=gate)


def observe(gate, limit, remaining, reset, now=NOW):
    ratelimit.observe(RateLimit(limit, remaining, at(reset)), now=now, connection=gate)


def stored(gate) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in gate.hgetall(RATELIMIT_GATE_KEY).items()}


def test_an_unknown_budget_lets_work_through_and_an_answer_without_headers_changes_nothing(gate):
    assert acquire(gate) is None
    ratelimit.observe(RateLimit(None, None, None), now=NOW, connection=gate)
    assert gate.exists(RATELIMIT_GATE_KEY) == 0


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


# Families (modwatch.mastodon.families): each answer's headers go to the family they describe.
MIDNIGHT = NOW - NOW % 86_400 + 86_400
PAGING_RESET = NOW - NOW % 900 + 900


def family_rate(family, limit, remaining, reset):
    return RateLimit(limit, remaining, at(reset), (family,))


def waits(family) -> float:
    return REGISTRY.get_sample_value("modwatch_ratelimit_waits_total", {"family": family}) or 0


def test_a_report_answer_showing_37_left_is_the_report_familys_not_the_global_budget(gate):
    """app/controllers/concerns/rate_limit_headers.rb: POST /api/v1/reports may show the report family's headers."""
    observe(gate, limit=300, remaining=250, reset=NOW + 60)
    ratelimit.observe(family_rate("reports", 400, 37, MIDNIGHT), now=NOW, connection=gate)
    assert stored(gate)["remaining"] == 250
    assert all(acquire(gate) is None for _ in range(100))  # analyses go on well past 37
    assert ratelimit.state(["reports"], connection=gate)["reports"]["remaining"] == 37


def test_a_report_limit_429_pauses_reports_only(gate):
    """app/lib/rate_limiter.rb: the report family's window ends at 00:00 UTC."""
    before = waits("reports")
    ratelimit.exhausted(family_rate("reports", 400, 12, MIDNIGHT), at(MIDNIGHT), now=NOW, connection=gate)
    refused = ratelimit.acquire_report(now=NOW, connection=gate)
    assert refused.family == "reports" and refused.reset_at == at(MIDNIGHT)
    assert waits("reports") == before + 1
    assert acquire(gate) is None and acquire(gate, priority=True) is None
    assert ratelimit.acquire_page(0.5, 5, now=NOW, connection=gate) is None
    assert ratelimit.acquire_report(now=MIDNIGHT + 1, connection=gate) is None  # the next day


def test_a_paging_429_blocks_paging_only(gate):
    """config/initializers/rack_attack.rb: throttle_authenticated_paging is its own window."""
    ratelimit.exhausted(family_rate("paging", 300, 0, PAGING_RESET), at(PAGING_RESET), now=NOW, connection=gate)
    assert ratelimit.acquire_page(0.5, 5, now=NOW, connection=gate).family == "paging"
    assert acquire(gate) is None and ratelimit.acquire_report(now=NOW, connection=gate) is None


def test_reports_are_counted_from_mastodons_limit_before_any_answer_shows_them(gate):
    """The report family's headers show only when it is nearer than the API limit: count from 400 a day."""
    day = NOW - NOW % 86_400
    allowed = [ratelimit.acquire_report(now=day + 3600 + i, connection=gate) is None for i in range(401)]
    assert allowed == [True] * 400 + [False]
    assert ratelimit.acquire_report(now=day + 86_400, connection=gate) is None


def test_polls_take_their_share_of_the_paging_window_paced_over_it(gate):
    """300 paging requests per 15 minutes per user, shared with people: polls take `share`, spread out."""
    start = NOW - NOW % 900
    taken = sum(ratelimit.acquire_page(0.5, 5, now=start + 1, connection=gate) is None for _ in range(50))
    assert taken == 5  # the burst at the window's start
    refused = ratelimit.acquire_page(0.5, 5, now=start + 1, connection=gate)
    assert refused.family == "paging" and start + 1 < refused.until.timestamp() <= start + 7
    halfway = sum(ratelimit.acquire_page(0.5, 5, now=start + 450, connection=gate) is None for _ in range(200))
    assert taken + halfway == 75 + 5
    late = sum(ratelimit.acquire_page(0.5, 5, now=start + 899, connection=gate) is None for _ in range(200))
    assert taken + halfway + late == 150  # never more than the share
    assert ratelimit.acquire_page(0.5, 5, now=start + 900, connection=gate) is None  # the next window


def test_a_report_the_global_budget_refuses_costs_none_of_the_days_reports(gate):
    day = NOW - NOW % 86_400
    assert ratelimit.acquire_report(now=day + 10, connection=gate) is None
    left = ratelimit.state(["reports"], connection=gate)["reports"]["remaining"]
    ratelimit.exhausted(RateLimit(300, 0, at(day + 300)), at(day + 300), now=day + 10, connection=gate)
    assert [ratelimit.acquire_report(now=day + 11, connection=gate).family for _ in range(3)] == ["global"] * 3
    assert ratelimit.state(["reports"], connection=gate)["reports"]["remaining"] == left
