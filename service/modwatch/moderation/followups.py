"""What moderation asks to happen next, for jobs/ to schedule.

Moderation knows nothing of queues: a flow returns (or hands to a sink) `FollowUp`s, and the job
layer turns each into an `analyze_and_maybe_report` job. The job id is chosen here, so moderation
can remember it (polling's deferred marker) before the job exists, and a follow-up asked for twice
becomes one job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable


@dataclass(frozen=True)
class FollowUp:
    """Analyse `account_id` again: now (`at` None) or at `at`, ahead of its queue when `at_front`."""

    account_id: str
    source: str
    job_id: str
    at: datetime | None = None
    at_front: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "source": self.source, "job_id": self.job_id,
                "at": self.at.isoformat() if self.at else None, "at_front": self.at_front}


# Takes follow-ups, schedules those not already pending, returns how many it scheduled.
Sink = Callable[[list[FollowUp]], int]

FOLLOW_UPS = "follow_ups"


def attach(result: dict[str, Any], *follow_ups: FollowUp) -> dict[str, Any]:
    """A flow's result carrying follow-ups for the job layer (which removes them before storing the result)."""
    result.setdefault(FOLLOW_UPS, []).extend(follow_ups)
    return result


def detach(result: Any) -> list[FollowUp]:
    """The follow-ups a flow's result carries, removed from it."""
    if not isinstance(result, dict):
        return []
    return list(result.pop(FOLLOW_UPS, ()))
