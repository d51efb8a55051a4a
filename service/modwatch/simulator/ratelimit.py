"""Mastodon's rate limits as the server keeps them: several fixed windows at once, headers of the nearest.

Rack::Attack throttles (config/initializers/rack_attack.rb) count every API request in windows
aligned on the epoch (`now / period`): 300 per 5 minutes per token, 1,500 per 5 minutes per user,
300 per 5 minutes per address without a valid token, and, for any request carrying `page`,
`min_id`, `max_id` or `since_id`, 300 per 15 minutes per user (per address unauthenticated).
Throttles are checked in the file's order and the first one over its limit answers 429 with its
own limit, `Remaining: 0` and its own reset. Otherwise the answer's headers describe the throttle
with the fewest requests left (app/controllers/concerns/rate_limit_headers.rb, `min_by`), and
`POST /api/v1/reports` then swaps in the report family's headers (app/lib/rate_limiter.rb, 400
per account per day) unless the answer already shows fewer left. The reset is the request time
plus what is left of the window, written with microseconds, so its fraction is the request's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

PAGING_PARAMS = ("page", "min_id", "max_id", "since_id")


@dataclass(frozen=True)
class Throttle:
    name: str
    limit: int
    period: int  # seconds


# In rack_attack.rb's order: the first throttle over its limit is the one a 429 names.
AUTHENTICATED_API = Throttle("throttle_authenticated_api", 1_500, 300)
PER_TOKEN_API = Throttle("throttle_per_token_api", 300, 300)
UNAUTHENTICATED_API = Throttle("throttle_unauthenticated_api", 300, 300)
AUTHENTICATED_PAGING = Throttle("throttle_authenticated_paging", 300, 900)
UNAUTHENTICATED_PAGING = Throttle("throttle_unauthenticated_paging", 300, 900)
REPORTS = Throttle("reports", 400, 86_400)  # RateLimiter::FAMILIES[:reports]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: datetime
    throttle: str = PER_TOKEN_API.name

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": iso8601_micro(self.reset_at),
        }


def iso8601(at: datetime) -> str:
    """Entity times: milliseconds, as Mastodon's serializers write them."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def iso8601_micro(at: datetime) -> str:
    """Rate-limit resets: `iso8601(6)`."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reset_of(period: int, now: datetime) -> datetime:
    """`now + (period - now.to_i % period)`: the window's end, carrying the request's fraction of a second."""
    return now + timedelta(seconds=period - int(now.timestamp()) % period)


class FixedWindow:
    """`limit` hits per key per window; windows are aligned to multiples of `period` seconds."""

    def __init__(self, limit: int, period: int, name: str = PER_TOKEN_API.name):
        self.throttle = Throttle(name, limit, period)
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return self.throttle.limit

    @property
    def period(self) -> int:
        return self.throttle.period

    def count(self, key: str, now: datetime) -> int:
        """Requests counted in the current window, without counting one."""
        window = int(now.timestamp()) // self.period
        with self._lock:
            seen_window, count = self._counts.get(key, (window, 0))
        return count if seen_window == window else 0

    def hit(self, key: str, now: datetime) -> Verdict:
        window = int(now.timestamp()) // self.period
        with self._lock:
            seen_window, count = self._counts.get(key, (window, 0))
            count = count + 1 if seen_window == window else 1
            self._counts[key] = (window, count)
        return Verdict(count <= self.limit, self.limit, max(self.limit - count, 0), reset_of(self.period, now),
                       self.throttle.name)

    def verdict(self, key: str, now: datetime) -> Verdict:
        """Where `key` stands, without counting a request."""
        count = self.count(key, now)
        return Verdict(count < self.limit, self.limit, max(self.limit - count, 0), reset_of(self.period, now),
                       self.throttle.name)

    def record(self, key: str, now: datetime) -> Verdict:
        """RateLimiter#record!: refuse at the limit without counting, else count one."""
        if self.count(key, now) >= self.limit:
            return Verdict(False, self.limit, 0, reset_of(self.period, now), self.throttle.name)
        return self.hit(key, now)


@dataclass(frozen=True)
class Caller:
    """What Rack::Attack keys on: the token and its user when the token is valid, else the address."""

    token: str | None
    user_id: int | None
    address: str
    paging: bool


class Limits:
    """Every throttle of the API, and the report family."""

    def __init__(self, per_token_limit: int = PER_TOKEN_API.limit, per_token_period: int = PER_TOKEN_API.period,
                 paging_limit: int = AUTHENTICATED_PAGING.limit, paging_period: int = AUTHENTICATED_PAGING.period,
                 reports_per_day: int = REPORTS.limit, user_limit: int = AUTHENTICATED_API.limit,
                 unauthenticated_limit: int = UNAUTHENTICATED_API.limit):
        self.user = FixedWindow(user_limit, per_token_period, AUTHENTICATED_API.name)
        self.token = FixedWindow(per_token_limit, per_token_period, PER_TOKEN_API.name)
        self.address = FixedWindow(unauthenticated_limit, per_token_period, UNAUTHENTICATED_API.name)
        self.paging = FixedWindow(paging_limit, paging_period, AUTHENTICATED_PAGING.name)
        self.address_paging = FixedWindow(paging_limit, paging_period, UNAUTHENTICATED_PAGING.name)
        self.reports = FixedWindow(reports_per_day, REPORTS.period, REPORTS.name)

    def throttles_for(self, caller: Caller) -> list[tuple[FixedWindow, str]]:
        if caller.user_id is not None:
            chosen = [(self.user, f"user:{caller.user_id}"), (self.token, f"token:{caller.token}")]
            if caller.paging:
                chosen.append((self.paging, f"user:{caller.user_id}"))
        else:
            chosen = [(self.address, f"ip:{caller.address}")]
            if caller.paging:
                chosen.append((self.address_paging, f"ip:{caller.address}"))
        return chosen

    def hit(self, caller: Caller, now: datetime) -> Verdict:
        """Count the request on each throttle in order; the first over its limit refuses it (and the rest
        are not counted, as Rack::Attack stops at the first), else the tightest one's headers."""
        seen: list[Verdict] = []
        for window, key in self.throttles_for(caller):
            verdict = window.hit(key, now)
            if not verdict.allowed:
                return Verdict(False, verdict.limit, 0, verdict.reset_at, verdict.throttle)
            seen.append(verdict)
        return min(seen, key=lambda v: v.remaining)

    def report_headers(self, account_id: int, answer: Verdict, now: datetime) -> Verdict:
        """override_rate_limit_headers: the report family's headers unless the answer shows fewer left."""
        family = self.reports.verdict(f"account:{account_id}", now)
        return answer if answer.remaining < family.remaining else family
