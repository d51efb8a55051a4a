"""The rate-limit gate every worker shares: Mastodon's budgets per family, as last seen, kept in Redis.

Mastodon keeps several limits at once (modwatch.mastodon.families): `global` per token, `user`,
`paging` per user (shared with the moderator's own web UI), `reports` per account per day, and
`unauthenticated` per address. Each answer's headers describe one of them; the client says which
(`RateLimit.families`), and `observe` notes them on that family only. So a report-limit 429
closes filing until midnight and nothing else, and a report answer showing 37 reports left does
not read as 37 requests left for polls and analyses.

Before a call a job `acquire`s what the call will spend, from every family it counts against:

- an analysis (`acquire`): the global family and the user family. The global family keeps the
  machinery below (reserve, slots); the others are plain counts.
- a poll page (`acquire_page`): global, user, and the paging family, of which polls take at most
  `POLL_PAGING_SHARE` of each window (the rest is the human moderators'), spread over the window
  so a burst of polls cannot spend it in its first minute.
- a report (`acquire_report`): global, user and the report family.

A family never seen starts from Mastodon's own limit and window (its reset on the epoch grid), so
the first day's reports are counted before any answer shows the report family's headers. Two
answers of one window keep the lower remaining, as other workers have spent budget in between.

The global family: `RATELIMIT_GATE_KEY` holds its last seen `limit`, `remaining` and `reset` (unix seconds),
and where the slots of deferred jobs have got to. Backlog work (analyses found by polling) leaves a
reserve to webhook and manual work and to the polls' pages. The reserve is a rate, a share of each
window: what it holds back at any moment is that share of the part of the window still ahead, so
the backlog spends at the end of a window what priority work did not need. A job refused is given
a slot after the reset: `limit` slots per window, spread evenly over the window less a margin (RQ
starts a job up to two seconds after its slot, and it must still fall in the slot's window), so a
backlog is paced through the windows instead of spending each new one at once, and priority work
arriving mid-window finds the budget the backlog has not reached yet. Priority work refused (the
budget spent to the last request) has slots of its own, from the reset on, so it never waits
behind the backlog's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

import redis

from modwatch.connection import get_redis, text
from modwatch.mastodon.client import MastodonClient, RateLimit
from modwatch.mastodon.families import FAMILIES, GLOBAL, PAGING, REPORTS, USER
from modwatch.redis_keys import RATELIMIT_FAMILY_KEY, RATELIMIT_GATE_KEY
from modwatch.telemetry.metrics import RATELIMIT_REMAINING, RATELIMIT_RESET, RATELIMIT_WAITS

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

# The plain families. KEYS: one hash per family. ARGV: now, then per family: Mastodon's limit,
# period, and our cap in the window (-1: none) with the burst the cap's pacing allows. Every
# family is checked before any is spent. Returns nil to go ahead, else {index, retry at, reset}.
_ACQUIRE_PLAIN = """
local now = tonumber(ARGV[1])
local state = {}
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 4
  local default_limit, period = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local cap, burst = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  local limit = tonumber(redis.call('HGET', key, 'limit')) or default_limit
  local remaining = tonumber(redis.call('HGET', key, 'remaining'))
  local reset = tonumber(redis.call('HGET', key, 'reset'))
  local ours = tonumber(redis.call('HGET', key, 'ours')) or 0
  local ours_reset = tonumber(redis.call('HGET', key, 'ours_reset')) or 0
  if not reset or not remaining or now >= reset then
    -- Mastodon's windows lie on the epoch grid of their period.
    reset = (math.floor(now / period) + 1) * period
    remaining = limit
  end
  if ours_reset ~= reset then ours = 0 end
  if remaining < 1 then return {i, tostring(reset), tostring(reset)} end
  if cap >= 0 then
    -- Our share, paced: what the part of the window gone so far allows, plus a burst.
    local elapsed = now - (reset - period)
    local allowed = math.min(cap, math.floor(cap * elapsed / period) + burst)
    if ours >= allowed then
      local at = reset
      if ours < cap then at = (reset - period) + (ours - burst + 1) * period / cap end
      return {i, string.format('%.6f', math.min(at, reset)), tostring(reset)}
    end
  end
  state[i] = {remaining, reset, ours}
end
for i, key in ipairs(KEYS) do
  local s = state[i]
  redis.call('HSET', key, 'remaining', s[1] - 1, 'reset', tostring(s[2]), 'ours', s[3] + 1,
             'ours_reset', tostring(s[2]))
end
return false
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
    """Refused: try again `until` (a slot from the reset on); the budget refills at `reset_at`.

    `family` is the limit that refused: work of another family goes on meanwhile."""

    until: datetime
    reset_at: datetime
    family: str = GLOBAL.name


def key_of(family: str) -> str:
    return RATELIMIT_GATE_KEY if family == GLOBAL.name else RATELIMIT_FAMILY_KEY.format(family=family)


def _at(seconds: bytes | str | float) -> datetime:
    return datetime.fromtimestamp(float(seconds), timezone.utc)


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _refused(wait: Wait) -> Wait:
    RATELIMIT_WAITS.labels(family=wait.family).inc()
    return wait


def _acquire_plain(connection: redis.Redis, now: float, limits: list[tuple[str, int, float]]) -> Wait | None:
    """limits: (family, cap in the window or -1, burst) for each plain family the request counts against."""
    args: list[str | float] = [repr(now)]
    for family, cap, burst in limits:
        args += [FAMILIES[family].limit, FAMILIES[family].period, cap, burst]
    answer = connection.register_script(_ACQUIRE_PLAIN)(keys=[key_of(f) for f, _, _ in limits], args=args)
    if answer is None:
        return None
    index, until, reset = answer
    return _refused(Wait(until=_at(until), reset_at=_at(reset), family=limits[int(index) - 1][0]))


# Gives back what _ACQUIRE_PLAIN took from each family, when a later check refused the request.
_REFUND = """
for i, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'reset') == ARGV[i] then
    redis.call('HINCRBY', key, 'remaining', 1)
    redis.call('HINCRBY', key, 'ours', -1)
  end
end
"""


def _both(connection: redis.Redis, now: float, limits: list[tuple[str, int, float]], priority: bool,
          book: bool) -> Wait | None:
    """The plain families, then the global one; a global refusal gives the plain families their request back
    (a report refused for the 5-minute budget must not cost one of the day's 400)."""
    refused = _acquire_plain(connection, now, limits)
    if refused is not None:
        return refused
    refused = _acquire_global(connection, now, priority, book)
    if refused is not None:
        keys = [key_of(family) for family, _, _ in limits]
        resets = [connection.hget(key, "reset") or b"" for key in keys]
        connection.register_script(_REFUND)(keys=keys, args=resets)
    return refused


def _acquire_global(connection: redis.Redis, now: float, priority: bool, book: bool) -> Wait | None:
    answer = connection.register_script(_ACQUIRE)(
        keys=[RATELIMIT_GATE_KEY], args=[repr(now), int(priority), int(book), RESERVE_SHARE, SLOT_MARGIN_SECONDS])
    if answer is None:
        return None
    slot, reset = answer
    return _refused(Wait(until=_at(slot), reset_at=_at(reset)))


def acquire(priority: bool, book: bool = True, now: float | None = None,
            connection: redis.Redis | None = None) -> Wait | None:
    """Take one request for an analysis (None: go ahead) or learn when to try again.

    `priority` work may spend the reserve. With `book`, a refused caller gets a slot of its own
    (priority work on its own line) and must come back then; without it (polls, which simply run
    again), the reset is the answer.
    """
    connection = connection or get_redis()
    now = _now(now)
    # The user family first: a request it refuses must not spend a global slot.
    return _both(connection, now, [(USER.name, -1, 0)], priority, book)


def acquire_page(share: float, burst: int, now: float | None = None,
                 connection: redis.Redis | None = None) -> Wait | None:
    """One poll page: within `share` of each paging window (paced, `burst` pages ahead of the pace),
    and the global and user budgets."""
    connection = connection or get_redis()
    now = _now(now)
    cap = math.floor(FAMILIES[PAGING.name].limit * share)
    return _both(connection, now, [(USER.name, -1, 0), (PAGING.name, cap, burst)], priority=True, book=False)


def acquire_report(now: float | None = None, connection: redis.Redis | None = None) -> Wait | None:
    """One report: the report family's daily budget, and the global and user budgets."""
    connection = connection or get_redis()
    now = _now(now)
    return _both(connection, now, [(USER.name, -1, 0), (REPORTS.name, -1, 0)], priority=True, book=False)


def blocked(family: str, now: float | None = None, connection: redis.Redis | None = None) -> Wait | None:
    """Whether `family` is spent until its reset, without taking anything (a filer deciding whether to try)."""
    state = (connection or get_redis()).hmget(key_of(family), "remaining", "reset")
    now = _now(now)
    if state[0] is None or state[1] is None or float(state[1]) <= now or float(state[0]) >= 1:
        return None
    return Wait(until=_at(state[1]), reset_at=_at(state[1]), family=family)


def observe(rate: RateLimit, now: float | None = None, connection: redis.Redis | None = None) -> None:
    """Note an answer's X-RateLimit-* headers on the families they describe (the global one when the
    answer does not say); answers without them, or from a window over, change nothing."""
    if rate.remaining is None or rate.reset_at is None:
        return
    connection = connection or get_redis()
    for family in rate.families or (GLOBAL.name,):
        connection.register_script(_OBSERVE)(
            keys=[key_of(family)],
            args=[repr(_now(now)), "" if rate.limit is None else rate.limit, rate.remaining,
                  repr(rate.reset_at.timestamp())],
        )
        RATELIMIT_REMAINING.labels(family=family).set(rate.remaining)
        RATELIMIT_RESET.labels(family=family).set(rate.reset_at.timestamp())


def observe_answers(client: MastodonClient, now: float | None = None, connection: redis.Redis | None = None) -> None:
    """Every answer the client got since it was last asked."""
    for rate in client.take_answers():
        observe(rate, now, connection)


def exhausted(rate: RateLimit, reset_at: datetime, now: float | None = None,
              connection: redis.Redis | None = None) -> None:
    """A 429: nothing is left until `reset_at` in the family that refused, whatever Remaining said."""
    observe(RateLimit(rate.limit, 0, reset_at, rate.families), now, connection)


def state(families: Iterable[str] = FAMILIES, connection: redis.Redis | None = None) -> dict[str, dict[str, float]]:
    """What the gate holds per family (for the API, the drill and the metrics)."""
    connection = connection or get_redis()
    return {family: {text(k): float(v) for k, v in connection.hgetall(key_of(family)).items()
                     if text(k) in ("limit", "remaining", "reset", "ours")}
            for family in families}


def next_second(at: datetime) -> datetime:
    """RQ schedules in whole seconds (it drops the fraction): round up so a job never runs before `at`."""
    return _at(math.ceil(at.timestamp()))
