"""Injected faults: latency, 5xx answers, 429 answers, answers slower than a client's timeout, and a
500 after a report was created (the work done, the answer lost).

Draws come from a generator seeded with the simulator seed, so a given request sequence meets the
same faults on every run.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields

FAULT_NAMES = ("latency_ms", "error_ratio", "ratelimit_ratio", "timeout_ratio", "timeout_seconds", "late_error_ratio")


@dataclass
class Faults:
    seed: int = 1
    latency_ms: int = 0
    error_ratio: float = 0.0
    ratelimit_ratio: float = 0.0
    timeout_ratio: float = 0.0
    timeout_seconds: float = 15.0
    late_error_ratio: float = 0.0  # POST /api/v1/reports: created, then answered 500
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def update(self, **changes) -> None:
        """Change some settings and restart the draw sequence from the seed."""
        for name, value in changes.items():
            if name not in FAULT_NAMES:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
            if name.endswith("_ratio") and not 0 <= float(value) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
            if float(value) < 0:
                raise ValueError(f"{name} must not be negative")
        for name, value in changes.items():
            setattr(self, name, type(getattr(self, name))(value))
        with self._lock:
            self._rng = random.Random(self.seed)

    def draw(self) -> str | None:
        """The fault for the next request: "timeout", "error", "ratelimit" or None."""
        with self._lock:
            roll = self._rng.random()
        for name, ratio in (("timeout", self.timeout_ratio), ("error", self.error_ratio),
                            ("ratelimit", self.ratelimit_ratio)):
            if roll < ratio:
                return name
            roll -= ratio
        return None

    def late_error(self) -> bool:
        """Whether this created report's answer is replaced by a 500."""
        if not self.late_error_ratio:
            return False
        with self._lock:
            return self._rng.random() < self.late_error_ratio

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in FAULT_NAMES}

