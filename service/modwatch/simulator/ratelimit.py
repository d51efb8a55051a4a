"""Fixed-window request counting, the way Mastodon's rack-attack throttles do it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: datetime

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": iso8601(self.reset_at),
        }


def iso8601(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class FixedWindow:
    """`limit` hits per key per window; windows are aligned to multiples of `period` seconds."""

    def __init__(self, limit: int, period: int):
        self.limit = limit
        self.period = period
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: datetime) -> Verdict:
        window = int(now.timestamp()) // self.period
        with self._lock:
            seen_window, count = self._counts.get(key, (window, 0))
            count = count + 1 if seen_window == window else 1
            self._counts[key] = (window, count)
        reset_at = datetime.fromtimestamp((window + 1) * self.period, timezone.utc)
        return Verdict(count <= self.limit, self.limit, max(self.limit - count, 0), reset_at)
