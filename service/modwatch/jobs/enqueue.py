"""How each job is enqueued: its queue, timeout, TTLs and retry policy, and webhook dedupe."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from rq import Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job

from modwatch.jobs import monitoring, tasks
from modwatch.jobs.queues import MODERATION, MONITORING, WEBHOOKS, get_queue
from modwatch.moderation.followups import FollowUp
from modwatch.redis_keys import STREAM_REPORTED_KEY

DAY = 24 * 3600
# Mastodon retries a delivery 16 times with Sidekiq's backoff, about 2.1 days in all
# (app/workers/webhooks/delivery_worker.rb: `retry: 16`): a webhook job, whose id is the dedupe
# key, is kept a little longer than that whatever its outcome.
WEBHOOK_REDELIVERY_WINDOW = 3 * DAY


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
_WEBHOOK = JobOptions(WEBHOOKS, timeout=120, result_ttl=WEBHOOK_REDELIVERY_WINDOW, failure_ttl=7 * DAY,
                      retry_intervals=_EXPONENTIAL)
# Polls are recurring: the next run resumes from the stored cursor, so a retry would only double up.
_POLL = JobOptions(MODERATION, timeout=600, result_ttl=3600, failure_ttl=7 * DAY)

JOB_OPTIONS: dict[Callable[..., Any], JobOptions] = {
    tasks.process_new_status: _WEBHOOK,
    tasks.process_new_report: _WEBHOOK,
    tasks.process_new_account: _WEBHOOK,
    tasks.process_status_update: _WEBHOOK,
    tasks.process_account_update: _WEBHOOK,
    tasks.process_report_update: _WEBHOOK,
    tasks.sync_report_outcomes: _POLL,  # no retry: the next poll syncs again
    tasks.poll_admin_accounts: _POLL,
    tasks.poll_admin_accounts_local: _POLL,
    # Recurring too: what one run leaves waits for the next.
    tasks.file_pending_reports: JobOptions(MODERATION, timeout=300, result_ttl=3600, failure_ttl=7 * DAY),
    tasks.analyze_and_maybe_report: JobOptions(
        MODERATION, timeout=300, result_ttl=DAY, failure_ttl=7 * DAY, retry_intervals=_EXPONENTIAL
    ),
    monitoring.record_queue_stats: JobOptions(MONITORING, timeout=30, result_ttl=300, failure_ttl=DAY),
    tasks.report_streamed_account: JobOptions(
        MODERATION, timeout=300, result_ttl=DAY, failure_ttl=7 * DAY, retry_intervals=_EXPONENTIAL
    ),
}

WEBHOOK_JOBS: dict[str, Callable[..., Any]] = {
    "status.created": tasks.process_new_status,
    "status.updated": tasks.process_status_update,
    "account.updated": tasks.process_account_update,
    "report.updated": tasks.process_report_update,
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


def enqueue_webhook(event: str, object_id: str, payload: dict[str, Any]) -> WebhookEnqueued:
    """Enqueue a webhook job once per (event, object id), on RQ's own unique job ids.

    The job id is made from the event and object id; with `unique=True` RQ checks and saves it in
    one script of its own and raises DuplicateJobError while that job exists, so a concurrent or
    later redelivery finds the first job and nothing is enqueued twice. A webhook job is kept
    through Mastodon's redelivery window (`WEBHOOK_REDELIVERY_WINDOW`); one deleted by hand
    (rq-dashboard, `Job.delete`) is gone, and its redelivery is enqueued again. Redis errors
    propagate: the caller answers 503 and Mastodon redelivers.
    """
    job_id = webhook_job_id(event, object_id)
    try:
        job = enqueue(WEBHOOK_JOBS[event], payload, job_id=job_id, unique=True)
    except DuplicateJobError:
        return WebhookEnqueued(job=None, job_id=job_id, duplicate=True)
    return WebhookEnqueued(job=job, job_id=job_id, duplicate=False)


# One report job per account from the stream: while STREAM_REPORTED_KEY lives, later posts of an account
# already being reported are decided `already_reported` and start nothing.
STREAM_REPORTED_TTL = DAY


def enqueue_stream_report(account: dict[str, Any], statuses: list[dict[str, Any]]) -> str | None:
    """Start the report job for a streamed account unless one was started already; its job id."""
    account_id = str(account["id"])
    job_id = f"stream-report-{account_id}-{uuid.uuid4().hex[:12]}"
    queue = get_queue(JOB_OPTIONS[tasks.report_streamed_account].queue)
    if not queue.connection.set(STREAM_REPORTED_KEY.format(account_id=account_id), job_id, nx=True,
                                ex=STREAM_REPORTED_TTL):
        return None
    try:
        enqueue(tasks.report_streamed_account, account, statuses, job_id=job_id)
    except BaseException:
        queue.connection.delete(STREAM_REPORTED_KEY.format(account_id=account_id))
        raise
    return job_id
