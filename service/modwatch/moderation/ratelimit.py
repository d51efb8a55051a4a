"""One rate-limit gate for every worker: Mastodon's budget as last seen, kept in Redis.

Mastodon counts requests per token in fixed windows (300 per 5 minutes) and answers with
X-RateLimit-Limit, -Remaining and -Reset. Every worker shares the token, so the budget is shared
too: the hash `modwatch:mastodon:ratelimit` holds the last seen `limit`, `remaining` and `reset`
(unix seconds), and `next_slot`, where the next deferred job goes.

Before a job calls Mastodon it `acquire`s one request. Backlog work (analyses found by polling)
stops while only the reserve is left, so webhook and manual work and the polls' pages still get
through. A job refused is given a slot after the reset: slots follow one another `interval`
apart, `limit - reserve` per window, each with a jitter inside its interval, so a backlog is paced
through the windows instead of spending each new one at once and meeting 429s. After the call the
job `observe`s the answer's headers; two answers of the same window keep the lower remaining, as
other workers have spent budget in between.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from modwatch.connection import get_redis
from modwatch.mastodon.client import RateLimit

GATE_KEY = "modwatch:mastodon:ratelimit"
# Share of each window's budget that backlog work leaves to webhook and manual work and to polls.
RESERVE_SHARE = 0.05

# ARGV: now, priority (1: may spend the reserve), book (1: take a slot when refused), reserve share,
# jitter (0..1). Returns nil to go ahead, else {slot, reset} as strings (Lua numbers become integers).
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
local reserve = math.ceil(limit * tonumber(ARGV[4]))
local floor = reserve
if ARGV[2] == '1' then floor = 0 end
if remaining > floor then
  redis.call('HSET', KEYS[1], 'remaining', remaining - 1, 'reset', tostring(reset))
  return false
end
if ARGV[3] ~= '1' then return {tostring(reset), tostring(reset)} end
local interval = period / math.max(limit - reserve, 1)
local slot = math.max(tonumber(redis.call('HGET', KEYS[1], 'next_slot')) or 0, reset)
redis.call('HSET', KEYS[1], 'next_slot', tostring(slot + interval))
return {tostring(slot + tonumber(ARGV[5]) * interval), tostring(reset)}
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
    """Refused: try again `until` (a slot after the reset); the budget refills at `reset_at`."""

    until: datetime
    reset_at: datetime


def _at(seconds: bytes | str) -> datetime:
    return datetime.fromtimestamp(float(seconds), timezone.utc)


def acquire(priority: bool, book: bool = True, now: float | None = None,
            connection: redis.Redis | None = None) -> Wait | None:
    """Take one request of the budget (None: go ahead) or learn when to try again.

    `priority` work may spend the reserve. With `book`, a refused caller gets a slot of its own
    and must come back then; without it (polls, which simply run again), the reset is the answer.
    """
    connection = connection or get_redis()
    answer = connection.register_script(_ACQUIRE)(
        keys=[GATE_KEY],
        args=[repr(time.time() if now is None else now), int(priority), int(book), RESERVE_SHARE, random.random()],
    )
    if answer is None:
        return None
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
