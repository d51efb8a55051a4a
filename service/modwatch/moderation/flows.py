"""The moderation flows behind the job functions: polls, webhooks and the analyse-and-report step.

Flows take accounts and posts and return decisions; what should happen later (an analysis at a
rate-limit slot, the accounts a poll found) comes back as `followups.FollowUp`s, which only jobs/
turns into jobs. Nothing here knows of queues.

Every Mastodon call first passes the shared rate-limit gate (`ratelimit`), and every answer's
rate-limit headers go back into it. An analysis the gate refuses, or one that meets a 429 anyway,
is scheduled again at its own slot after the reset (a worker never sleeps on it); other retryable
errors propagate so RQ's exponential Retry runs the job again; a gone account or a missing scope
is recorded and given up.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

import structlog

from modwatch.connection import get_redis, text
from modwatch.mastodon.client import MastodonClient
from modwatch.mastodon.errors import ForbiddenError, GoneError, MastodonError, RateLimitedError
from modwatch.moderation import analysis, outcomes, polling, ratelimit, recent, reports, runtime
from modwatch.moderation.followups import FollowUp, Sink, attach
from modwatch.redis_keys import ANALYSIS_DEFERRED_KEY, OWN_ACCOUNT_KEY
from modwatch.settings import Settings, get_settings

log = structlog.get_logger(__name__)

OWN_ACCOUNT_TTL = 3600


def client_for(settings: Settings) -> MastodonClient:
    return MastodonClient.from_settings(settings)


def poll_accounts(origin: str, submit: Sink) -> dict[str, Any]:
    """One poll run of `origin`; the analyses it finds go to `submit` page by page."""
    settings = get_settings()
    if runtime.current(settings).panic_stop:
        return {"outcome": "skipped", "reason": "PANIC_STOP is on", "origin": origin}
    # Each page passes the gate (polling.poll): the run stops where the budget does, and the
    # recurring schedule runs it again; the committed cursor says where to go on.
    client = client_for(settings)
    source = polling.source_of(origin)
    try:
        result = polling.poll(origin, client, settings, submit)
    except RateLimitedError as exc:
        ratelimit.exhausted(client.ratelimit, exc.reset_at)
        return {"outcome": "rate_limited", "origin": origin, "reset_at": exc.reset_at.isoformat()}
    except ForbiddenError as exc:
        return {**_forbidden(exc, None, source), "origin": origin}
    finally:
        ratelimit.observe_answers(client)
    if result.get("outcome") == "polled" and outcomes.due(settings.report_outcomes_interval):
        # Moderators' verdicts ride on the polls (one request per REPORT_OUTCOMES_INTERVAL, whichever
        # origin's poll comes first) rather than on a schedule of their own; they never fail a poll.
        result["verdicts"] = sync_report_outcomes(client)
    return result


def file_pending_reports() -> dict[str, Any]:
    """The report decisions that wait, filed when they may be (reports.file_due)."""
    settings = get_settings()
    if runtime.current(settings).panic_stop:
        return {"outcome": "skipped", "reason": "PANIC_STOP is on"}
    results = reports.file_due(client_for(settings), settings)
    counts: dict[str, int] = {}
    for item in results:
        counts[item["outcome"]] = counts.get(item["outcome"], 0) + 1
    return {"outcome": "done", "reports": counts}


def analyze_and_maybe_report(account_id: str, source: str) -> dict[str, Any]:
    """Fetch an account's public posts and analyse them with the posts Mastodon delivered to us
    (`recent`: its direct and followers-only posts are not in what the API returns)."""
    settings = get_settings()
    client = client_for(settings)

    def work() -> dict[str, Any]:
        account, statuses = analysis.fetch_account_and_statuses(client, account_id)
        return decide(account, recent.merged(recent.recall(account_id), statuses), source, client, settings)

    return _guarded(account_id, source, client, work)


def analyse_payload(account: dict[str, Any], statuses: list[dict[str, Any]], source: str,
                    settings: Settings | None = None) -> dict[str, Any]:
    """Analyse an account and posts exactly as delivered (webhook, stream): no Mastodon request,
    except to file a report when the score reaches the threshold (through the rate-limit gate)."""
    if not isinstance(account, dict) or not str(account.get("id", "")).isdigit():
        return {"outcome": "skipped", "reason": "account is missing or has no numeric id"}
    settings = settings or get_settings()
    return decide(analysis.public_account(account), statuses, source, None, settings)


def handle_status(status: dict[str, Any]) -> dict[str, Any]:
    """`status.created` and `status.updated`: the delivered post (any visibility, as edited) with the
    author's other posts delivered before; Mastodon is asked for more only when that cannot decide."""
    author = status.get("account")
    if not isinstance(author, dict) or not str(author.get("id", "")).isdigit() or not str(status.get("id", "")).isdigit():
        return {"outcome": "skipped", "reason": "status.account is missing or has no numeric id"}
    recent.remember(status)
    return _analyse_delivered(author, recent.recall(str(author["id"])))


def handle_account(admin_account: dict[str, Any]) -> dict[str, Any]:
    """`account.created` and `account.updated` (an Admin::Account): the profile as delivered, with the
    posts delivered before (spam added to a bio or profile fields by an edit is seen here)."""
    account = admin_account.get("account")
    if not isinstance(account, dict) or not str(account.get("id", "")).isdigit():
        return {"outcome": "skipped", "reason": "admin_account.account is missing or has no numeric id"}
    return _analyse_delivered(account, recent.recall(str(account["id"])))


# A delivered analysis this close below the threshold, for an account that has posted more than was
# delivered, is worth one request for its public posts: they may decide it.
UNDECIDED_MARGIN = 5


def _analyse_delivered(account: dict[str, Any], statuses: list[dict[str, Any]]) -> dict[str, Any]:
    settings = get_settings()
    scored = analysis.score(account, statuses, settings, runtime.current(settings))
    posted = count if isinstance(count := account.get("statuses_count"), int) else 0
    if scored.reportable or scored.analysis.score < scored.threshold - UNDECIDED_MARGIN or posted <= len(statuses):
        return decide(account, statuses, "webhook", None, settings, scored=scored)
    client = client_for(settings)
    account_id = str(account["id"])

    def work() -> dict[str, Any]:
        fetched = client.account_statuses(account_id, limit=analysis.RECENT_STATUSES)
        fresh = embedded if fetched and isinstance(embedded := fetched[0].get("account"), dict) else account
        return decide(fresh, recent.merged(statuses, fetched), "webhook", client, settings)

    return _guarded(account_id, "webhook", client, work)


def handle_new_report(report: dict[str, Any]) -> dict[str, Any]:
    reporter = report.get("account") or {}
    settings = get_settings()
    client = client_for(settings)
    target = report.get("target_account") or {}

    def work() -> dict[str, Any]:
        if str(reporter.get("id")) == own_account_id(client):
            # Mastodon announces the reports modwatch files itself; analysing them again would loop.
            return {"outcome": "ignored", "reason": "report filed by modwatch", "report_id": report.get("id")}
        return _analyse_embedded(target, "report.target_account", client, settings)

    return _guarded(str(target.get("id")), "webhook", client, work)


def handle_report_update(report: dict[str, Any]) -> dict[str, Any]:
    """`report.updated`: when a moderator resolved one of modwatch's reports, count the verdict per rule."""
    counted = outcomes.record([report])
    verdict = outcomes.verdict_of(report)
    return {"outcome": "verdict" if any(counted.values()) else "ignored", "report_id": str(report.get("id")),
            "verdict": verdict}


def sync_report_outcomes(client: MastodonClient | None = None) -> dict[str, Any]:
    """The verdicts of recently resolved reports now (polls read them every REPORT_OUTCOMES_INTERVAL)."""
    settings = get_settings()
    if runtime.current(settings).panic_stop:
        return {"outcome": "skipped", "reason": "PANIC_STOP is on"}
    wait = ratelimit.acquire(priority=False, book=False)
    if wait is not None:
        return {"outcome": "rate_limited", "reset_at": wait.reset_at.isoformat()}
    client = client or client_for(settings)
    try:
        counted = outcomes.sync(client)
    except RateLimitedError as exc:
        ratelimit.exhausted(client.ratelimit, exc.reset_at)
        return {"outcome": "rate_limited", "reset_at": exc.reset_at.isoformat()}
    except ForbiddenError as exc:
        return _forbidden(exc, None, "outcomes")
    except MastodonError as exc:  # unreachable or erring: the next poll tries again
        return {"outcome": "failed", "reason": str(exc)}
    finally:
        ratelimit.observe_answers(client)
    return {"outcome": "synced", **counted}


def own_account_id(client: MastodonClient) -> str:
    """The account behind our token, cached in Redis: forked work horses share no memory."""
    connection = get_redis()
    cached = connection.get(OWN_ACCOUNT_KEY)
    if cached is not None:
        return text(cached)
    account_id = str(client.verify_credentials()["id"])
    connection.set(OWN_ACCOUNT_KEY, account_id, ex=OWN_ACCOUNT_TTL)
    return account_id


def _analyse_embedded(embedded: Any, where: str, client: MastodonClient | None = None,
                      settings: Settings | None = None) -> dict[str, Any]:
    """Analyse the account a report names, with its recent statuses fetched now (it is often a
    remote account, whose posts were never delivered to us).

    Deliveries come late, out of order and twice: the statuses are always fetched fresh, and a
    repeated decision meets the report's dedupe key.
    """
    if not isinstance(embedded, dict) or not str(embedded.get("id", "")).isdigit():
        return {"outcome": "skipped", "reason": f"{where} is missing or has no numeric id"}
    settings = settings or get_settings()
    client = client or client_for(settings)
    account = analysis.public_account(embedded)
    account_id = str(account["id"])

    def work() -> dict[str, Any]:
        statuses = client.account_statuses(account_id, limit=analysis.RECENT_STATUSES)
        fresh = statuses[0].get("account") if statuses else None
        return decide(fresh if isinstance(fresh, dict) else account, recent.merged(recent.recall(account_id), statuses),
                      "webhook", client, settings)

    return _guarded(account_id, "webhook", client, work)


def decide(account: dict[str, Any], statuses: list[dict[str, Any]], source: str, client: MastodonClient | None,
           settings: Settings, scored: analysis.Scored | None = None) -> dict[str, Any]:
    """Score (unless given), record, and report when the score reaches the threshold.

    Without a client (the analysis needed no Mastodon request) one is made to file, and filing
    passes the rate-limit gate first. Accounts in a wave this one completed were scored before the
    wave existed: each gets a follow-up analysis.
    """
    scored = scored or analysis.score(account, statuses, settings, runtime.current(settings))
    analysis.record(scored, source)
    get_redis().delete(ANALYSIS_DEFERRED_KEY.format(account_id=scored.account.get("id")))
    result: dict[str, Any] = {
        "outcome": "analysed",
        "account_id": str(scored.account.get("id")),
        "score": scored.analysis.score,
        "threshold": scored.threshold,
        "rules": scored.analysis.rule_names,
    }
    if scored.wave_members:
        # One per member per ten minutes however many waves name it; `submit` skips pending ones.
        slot = int(time.time()) // 600
        attach(result, *(FollowUp(member, source, f"analyze-{member}-wave-{slot}") for member in scored.wave_members))
    if not scored.reportable:
        return result
    # The report path passes its own gate (the report family) and never raises for a rate limit.
    report = reports.record_and_file(scored, source, settings, client or client_for(settings))
    result.update(outcome=report["outcome"], decision=report["decision"], reason=report["reason"],
                  dedupe_key=report["dedupe_key"])
    return result


def _guarded(account_id: str, source: str, client: MastodonClient,
             work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    # Analyses found by polling are the backlog: they leave the reserve to webhook and manual work.
    priority = not source.startswith("poll_")
    wait = ratelimit.acquire(priority=priority)
    if wait is not None:
        return _retry_later(account_id, source, wait)
    try:
        return work()
    except RateLimitedError as exc:
        ratelimit.exhausted(client.ratelimit, exc.reset_at)
        wait = ratelimit.acquire(priority=priority)
        return _retry_later(account_id, source, wait or ratelimit.Wait(exc.reset_at, exc.reset_at))
    except GoneError as exc:
        reports.audit("gone", account_id, source, reason=str(exc))
        return {"outcome": "gone", "account_id": account_id, "reason": str(exc)}
    except ForbiddenError as exc:
        return {**_forbidden(exc, account_id, source), "account_id": account_id}
    finally:
        ratelimit.observe_answers(client)


def _forbidden(exc: ForbiddenError, account_id: str | None, source: str) -> dict[str, Any]:
    """Give up and record: the token lacks a scope, which only an admin can fix."""
    reason = f"missing scope {exc.missing_scope or 'unknown'}: {exc}"
    reports.audit("forbidden", account_id, source, reason=reason)
    return {"outcome": "forbidden", "reason": reason}


DEFERRED_MARGIN_SECONDS = 300


def _retry_later(account_id: str, source: str, wait: ratelimit.Wait) -> dict[str, Any]:
    """A fresh analysis at the slot the gate gave: its statuses are fetched anew then.

    Due, it goes to the front of its queue: the slot is its turn in the budget, which analyses a
    poll has just queued would otherwise take, pushing it to a slot a window later.
    """
    at = ratelimit.next_second(wait.until)
    # A fresh id each time: the job asking may itself be the retry of an earlier slot.
    follow_up = FollowUp(account_id, source, f"analyze-{account_id}-retry-{uuid.uuid4().hex}", at=at, at_front=True)
    # Until a little after the slot: a poll meanwhile sees the account is already taken care of.
    get_redis().set(ANALYSIS_DEFERRED_KEY.format(account_id=account_id), follow_up.job_id,
                    exat=int(at.timestamp()) + DEFERRED_MARGIN_SECONDS)
    log.info("rate_limited_rescheduled", account_id=account_id, retry_at=at.isoformat(), job_id=follow_up.job_id)
    return attach({"outcome": "rate_limited", "account_id": account_id, "retry_job_id": follow_up.job_id,
                   "retry_at": at.isoformat(), "reset_at": wait.reset_at.isoformat()}, follow_up)
