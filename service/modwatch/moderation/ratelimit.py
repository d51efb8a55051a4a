"""One rate-limit gate for every worker: Mastodon's budget as last seen, kept in Redis.

Mastodon counts requests per token in fixed windows (300 per 5 minutes) and answers with
X-RateLimit-Limit, -Remaining and -Reset. Every worker shares the token, so the budget is shared
too: the hash `modwatch:mastodon:ratelimit` holds the last seen `limit`, `remaining` and `reset`
(unix seconds), and where the slots of deferred jobs have got to.

Before a job calls Mastodon it `acquire`s one request. Backlog work (analyses found by polling)
leaves a reserve to webhook and manual work and to the polls' pages. The reserve is a rate, a
share of each window: what it holds back at any moment is that share of the part of the window
still ahead, so the backlog spends at the end of a window what priority work did not need.

A job refused is given a slot after the reset: `limit` slots per window, spread evenly over the
window less a margin (RQ starts a job up to two seconds after its slot, and it must still fall
in the slot's window), so a backlog is paced through the windows instead of spending each new one
at once, and priority work arriving mid-window finds the budget the backlog has not reached yet.
Priority work refused (the budget spent to the last request) has slots of its own, from the reset
on, so it never waits behind the backlog's. After the call the job `observe`s the answer's
headers; two answers of the same window keep the lower remaining, as other workers have spent
budget in between.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from modwatch.connection import get_redis
from modwatch.mastodon.client import RateLimit
from modwatch.telemetry.metrics import MASTODON_THROTTLED

GATE_KEY = "modwatch:mastodon:ratelimit"
# Share of each window's budget that backlog work leaves to webhook and manual work and to polls.
RESERVE_SHARE = 0.05
# RQ rounds a slot up to the whole second, and its scheduler moves due jobs once a second.
SLOT_MARGIN_SECONDS = 2

# ARGV: now, priority (1: may spend the reserve, books a priority slot), book (1: take a slot when
# refused), reserve share, slot margin. Returns nil to go ahead, else {slot, reset} as strings
# (Lua numbers would become integers; tostring keeps only 14 digits).
_ACQUIRE = """
local now = tonumber(ARGV[1])
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit'))
if not limit or limit < 1 then return false end
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining')) or limit
local reset = tonumber(redis.call('HGET', KEYS[1], 'reset')) or now
-- Mastodon's windows allow one request per second on average (300 per 5 minutes).
local period = limit
if now >= reset then
  -- A fresh window: its reset lies on the same fixed grid until an answer says otherwise.
  reset = reset + period * (math.floor((now - reset) / period) + 1)
  remaining = limit
end
local priority = ARGV[2] == '1'
local reserve = 0
if not priority then
  reserve = limit * tonumber(ARGV[4]) * math.min(reset - now, period) / period
end
if remaining > reserve then
  redis.call('HSET', KEYS[1], 'remaining', remaining - 1, 'reset', tostring(reset))
  return false
end
if ARGV[3] ~= '1' then return {tostring(reset), tostring(reset)} end
-- The next free slot of this line: windows from the reset on, `limit` slots each.
local line = priority and 'priority' or 'backlog'
local window = tonumber(redis.call('HGET', KEYS[1], line .. '_window')) or 0
local taken = tonumber(redis.call('HGET', KEYS[1], line .. '_taken')) or 0
if window < reset then window, taken = reset, 0 end
if taken >= limit then window, taken = window + period, 0 end
redis.call('HSET', KEYS[1], line .. '_window', tostring(window), line .. '_taken', taken + 1)
local slot = window + taken * (period - tonumber(ARGV[5])) / limit
return {string.format('%.6f', slot), tostring(reset)}
"""

# ARGV: now, limit ('' when unknown), remaining, reset.
_OBSERVE = """
local now, remaining, reset = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
if reset <= now then return 0 end
local stored_reset = tonumber(redis.call('HGET', KEYS[1], 'reset'))
local stored_remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining'))
if stored_reset and stored_reset > now and stored_remaining then
  remaining = math.min(remaining, stored_remaining)
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'limit', ARGV[2]) end
redis.call('HSET', KEYS[1], 'remaining', remaining, 'reset', ARGV[4])
return 1
"""


@dataclass(frozen=True)
class Wait:
    """Refused: try again `until` (a slot from the reset on); the budget refills at `reset_at`."""

    until: datetime
    reset_at: datetime


def _at(seconds: bytes | str) -> datetime:
    return datetime.fromtimestamp(float(seconds), timezone.utc)


def acquire(priority: bool, book: bool = True, now: float | None = None,
            connection: redis.Redis | None = None) -> Wait | None:
    """Take one request of the budget (None: go ahead) or learn when to try again.

    `priority` work may spend the reserve. With `book`, a refused caller gets a slot of its own
    (priority work on its own line) and must come back then; without it (polls, which simply run
    again), the reset is the answer.
    """
    connection = connection or get_redis()
    answer = connection.register_script(_ACQUIRE)(
        keys=[GATE_KEY],
        args=[repr(time.time() if now is None else now), int(priority), int(book), RESERVE_SHARE, SLOT_MARGIN_SECONDS],
    )
    if answer is None:
        return None
    MASTODON_THROTTLED.labels(work="priority" if priority else "backlog").inc()
    slot, reset = answer
    return Wait(until=_at(slot), reset_at=_at(reset))


def observe(rate: RateLimit, now: float | None = None, connection: redis.Redis | None = None) -> None:
    """Note an answer's X-RateLimit-* headers; answers without them, or from a window over, change nothing."""
    if rate.remaining is None or rate.reset_at is None:
        return
    (connection or get_redis()).register_script(_OBSERVE)(
        keys=[GATE_KEY],
        args=[repr(time.time() if now is None else now), "" if rate.limit is None else rate.limit, rate.remaining,
              repr(rate.reset_at.timestamp())],
    )


def exhausted(rate: RateLimit, reset_at: datetime, now: float | None = None,
              connection: redis.Redis | None = None) -> None:
    """A 429: nothing is left until `reset_at`, whatever the answer's Remaining said."""
    observe(RateLimit(rate.limit, 0, reset_at), now, connection)


def next_second(at: datetime) -> datetime:
    """RQ schedules in whole seconds (it drops the fraction): round up so a job never runs before `at`."""
    return _at(math.ceil(at.timestamp()))
