"""How each job is enqueued: its queue, timeout, TTLs and retry policy, and webhook dedupe."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Callable

from rq import Retry
from rq.job import Job

from modwatch.jobs import tasks
from modwatch.jobs.queues import MODERATION, MONITORING, WEBHOOKS, ModwatchQueue, get_queue
from modwatch.moderation.followups import FollowUp

DAY = 24 * 3600
# Mastodon retries a delivery for about two days; remember deliveries a little longer.
WEBHOOK_SEEN_TTL = 3 * DAY


@dataclass(frozen=True)
class JobOptions:
    queue: str
    timeout: int
    result_ttl: int
    failure_ttl: int
    # Backoff in seconds between attempts; empty where a retry is not safe or not useful.
    retry_intervals: tuple[int, ...] = ()

    def retry(self) -> Retry | None:
        if not self.retry_intervals:
            return None
        return Retry(max=len(self.retry_intervals), interval=list(self.retry_intervals))

    def enqueue_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `Queue.enqueue`."""
        return {
            "job_timeout": self.timeout,
            "result_ttl": self.result_ttl,
            "failure_ttl": self.failure_ttl,
            "retry": self.retry(),
        }


# Webhook and analysis jobs are safe to retry: a report is deduplicated by its evidence key.
_EXPONENTIAL = (10, 30, 90, 270, 810)
_WEBHOOK = JobOptions(WEBHOOKS, timeout=120, result_ttl=DAY, failure_ttl=7 * DAY, retry_intervals=_EXPONENTIAL)
# Polls are recurring: the next run resumes from the stored cursor, so a retry would only double up.
_POLL = JobOptions(MODERATION, timeout=600, result_ttl=3600, failure_ttl=7 * DAY)

JOB_OPTIONS: dict[Callable[..., Any], JobOptions] = {
    tasks.process_new_status: _WEBHOOK,
    tasks.process_new_report: _WEBHOOK,
    tasks.process_new_account: _WEBHOOK,
    tasks.poll_admin_accounts: _POLL,
    tasks.poll_admin_accounts_local: _POLL,
    # Recurring too: what one run leaves waits for the next.
    tasks.file_pending_reports: JobOptions(MODERATION, timeout=300, result_ttl=3600, failure_ttl=7 * DAY),
    tasks.analyze_and_maybe_report: JobOptions(
        MODERATION, timeout=300, result_ttl=DAY, failure_ttl=7 * DAY, retry_intervals=_EXPONENTIAL
    ),
    tasks.record_queue_stats: JobOptions(MONITORING, timeout=30, result_ttl=300, failure_ttl=DAY),
}

WEBHOOK_JOBS: dict[str, Callable[..., Any]] = {
    "status.created": tasks.process_new_status,
    "report.created": tasks.process_new_report,
    "account.created": tasks.process_new_account,
}


def enqueue(fn: Callable[..., Any], *args: Any, job_id: str | None = None, **kwargs: Any) -> Job:
    options = JOB_OPTIONS[fn]
    return get_queue(options.queue).enqueue(fn, *args, job_id=job_id, **options.enqueue_kwargs(), **kwargs)


# A job in one of these states will still run: a follow-up with its id adds nothing.
PENDING = {"queued", "started", "scheduled", "deferred"}


def submit(follow_ups: list[FollowUp]) -> int:
    """Enqueue moderation's follow-ups as `analyze_and_maybe_report` jobs, each unless its job is
    still pending; how many were enqueued."""
    if not follow_ups:
        return 0
    options = JOB_OPTIONS[tasks.analyze_and_maybe_report]
    queue = get_queue(options.queue)
    existing = Job.fetch_many([item.job_id for item in follow_ups], connection=queue.connection)
    count = 0
    for item, job in zip(follow_ups, existing):
        if job is not None and job.get_status(refresh=False) in PENDING:
            continue
        args = (tasks.analyze_and_maybe_report, item.account_id, item.source)
        if item.at is None:
            queue.enqueue(*args, job_id=item.job_id, at_front=item.at_front, **options.enqueue_kwargs())
        else:
            queue.enqueue_at(item.at, *args, job_id=item.job_id, at_front=item.at_front, **options.enqueue_kwargs())
        count += 1
    return count


def webhook_job_id(event: str, object_id: str) -> str:
    """Deterministic id: event + object id, in RQ's allowed alphabet."""
    return "wh-" + re.sub(r"[^A-Za-z0-9_-]", "_", f"{event}-{object_id}")


@dataclass(frozen=True)
class WebhookEnqueued:
    job: Job | None
    job_id: str
    duplicate: bool


# Dedupe and enqueue in one atomic round trip: if the marker is set, answer the first job id;
# otherwise set it and run the commands RQ queued for the enqueue (ARGV: job id, marker TTL, then
# each command as its argument count followed by its arguments).
_ENQUEUE_UNLESS_SEEN = """
local seen = redis.call('GET', KEYS[1])
if seen then return seen end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local i = 3
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + count))
  i = i + count + 1
end
return false
"""

@functools.lru_cache(maxsize=8)
def _enqueue_unless_seen(connection: Any) -> Any:
    """The script bound to a connection, made once (it hashes its source when made)."""
    return connection.register_script(_ENQUEUE_UNLESS_SEEN)


# RQ stamps each job with the server's version, read with INFO on every new Queue object;
# a process reads it once.
_server_version: tuple[int, int, int] | None = None


def _redis_server_version(queue: ModwatchQueue) -> tuple[int, int, int]:
    global _server_version
    if _server_version is None:
        _server_version = queue.get_redis_server_version()
    return _server_version


def enqueue_webhook(event: str, object_id: str, payload: dict[str, Any]) -> WebhookEnqueued:
    """Enqueue a webhook job once per (event, object id), atomically with its dedupe marker.

    RQ writes the job into a pipeline that is never executed; a Lua script runs those commands
    only if it sets the marker, so a concurrent or later redelivery sees the first job id and
    nothing is enqueued twice, and a marker never exists without its job. Redis errors propagate:
    the caller answers 503 and Mastodon redelivers.
    """
    fn = WEBHOOK_JOBS[event]
    options = JOB_OPTIONS[fn]
    job_id = webhook_job_id(event, object_id)
    marker = f"modwatch:webhook:seen:{event}:{object_id}"
    queue = get_queue(options.queue)
    queue.redis_server_version = _redis_server_version(queue)
    job = queue.create_job(
        fn,
        args=(payload,),
        job_id=job_id,
        timeout=options.timeout,
        result_ttl=options.result_ttl,
        failure_ttl=options.failure_ttl,
        retry=options.retry(),
    )
    with queue.connection.pipeline() as pipe:
        queue.enqueue_job(job, pipeline=pipe)
        commands = [part for args, _ in pipe.command_stack for part in (len(args), *args)]
    seen = _enqueue_unless_seen(queue.connection)(keys=[marker], args=[job_id, WEBHOOK_SEEN_TTL, *commands])
    if seen is not None:
        return WebhookEnqueued(job=None, job_id=seen.decode(), duplicate=True)
    return WebhookEnqueued(job=job, job_id=job_id, duplicate=False)
