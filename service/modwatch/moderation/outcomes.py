"""What moderators did with modwatch's reports, per rule: the precision the rules have in practice.

A report modwatch filed ends in one of two verdicts once a moderator resolves it:
- `actioned`: the target account was suspended, silenced, disabled or marked sensitive (the
  Admin::Report's `target_account` says so), so the report was right;
- `dismissed`: resolved with none of that, so modwatch bothered a moderator for nothing.
An open report has no verdict yet.

Verdicts arrive by the `report.updated` webhook where the instance sends it, and otherwise by a
sync that lists resolved reports (one admin API request), run by the polls once per
REPORT_OUTCOMES_INTERVAL or by hand (`POST /jobs/trigger/sync_report_outcomes`). Each report counts
once, for every rule that contributed to it (`modwatch_rule_verdicts_total{rule,verdict}`), and
the tallies are kept in Redis so `GET /moderation/rules/precision` survives restarts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from modwatch.connection import get_redis, text
from modwatch.mastodon.client import MastodonClient
from modwatch.moderation import reports
from modwatch.redis_keys import OUTCOMES_NEXT_SYNC_KEY, OUTCOMES_SEEN_KEY, OUTCOMES_TALLY_KEY
from modwatch.storage.db import session_scope
from modwatch.storage.models import AccountAnalysis, Report
from modwatch.telemetry.metrics import RULE_VERDICTS

VERDICTS = ("actioned", "dismissed")
# Resolved reports looked at per sync: Mastodon's page maximum, newest first.
SYNC_PAGE = 200
_ACTIONS = ("suspended", "silenced", "disabled", "sensitized")


def verdict_of(admin_report: dict[str, Any]) -> str | None:
    """`actioned`, `dismissed`, or None while the report is open (Admin::Report entity)."""
    if not admin_report.get("action_taken"):
        return None
    target = embedded if isinstance(embedded := admin_report.get("target_account"), dict) else {}
    return "actioned" if any(target.get(flag) for flag in _ACTIONS) else "dismissed"


def _ours(mastodon_report_ids: list[str]) -> dict[str, list[str]]:
    """Mastodon report id -> the rules of the analysis behind it, for the reports modwatch filed."""
    if not mastodon_report_ids:
        return {}
    with session_scope() as session:
        rows = session.execute(
            select(Report.mastodon_report_id, Report.dedupe_key).where(Report.mastodon_report_id.in_(mastodon_report_ids))
        ).all()
        keys = {key for _, key in rows}
        rules: dict[str, list[str]] = {}
        if keys:
            for evidence_key, names in session.execute(
                select(AccountAnalysis.evidence_key, AccountAnalysis.rule_names)
                .where(AccountAnalysis.evidence_key.in_(keys)).order_by(AccountAnalysis.id)
            ):
                rules[evidence_key] = list(names or [])
        # report_id is never None here (IN matched it); the column is nullable.
        return {report_id: rules.get(key, []) for report_id, key in rows if report_id is not None}


def record(admin_reports: list[dict[str, Any]]) -> dict[str, int]:
    """Count the verdicts of resolved reports modwatch filed, each report once; how many of each."""
    resolved = {str(report.get("id")): verdict for report in admin_reports if (verdict := verdict_of(report))}
    ours = _ours(list(resolved))
    counted = {verdict: 0 for verdict in VERDICTS}
    connection = get_redis()
    for report_id, rules in ours.items():
        verdict = resolved[report_id]
        # The account's report is closed: evidence held behind it becomes the next report.
        reports.mark_resolved(report_id)
        # HSETNX: the webhook and the sync may both see a report; only the first counts it.
        if not connection.hsetnx(OUTCOMES_SEEN_KEY, report_id, verdict):
            continue
        counted[verdict] += 1
        with connection.pipeline(transaction=False) as pipe:
            for rule in rules:
                pipe.hincrby(OUTCOMES_TALLY_KEY, f"{rule}\t{verdict}", 1)
                RULE_VERDICTS.labels(rule=rule, verdict=verdict).inc()
            pipe.execute()
    return counted


def due(interval: int) -> bool:
    """True once per `interval` seconds across every worker (the first caller takes the turn)."""
    return bool(get_redis().set(OUTCOMES_NEXT_SYNC_KEY, "1", nx=True, ex=interval))


def sync(client: MastodonClient) -> dict[str, int]:
    """One request: the newest resolved reports, their verdicts counted (those already seen are skipped)."""
    return record(client.admin_reports(SYNC_PAGE, resolved=True))


def precision() -> dict[str, dict[str, Any]]:
    """Per rule: actioned and dismissed reports it contributed to, and the share actioned."""
    tally: dict[str, dict[str, Any]] = {}
    for field, count in get_redis().hgetall(OUTCOMES_TALLY_KEY).items():
        rule, _, verdict = text(field).partition("\t")
        tally.setdefault(rule, {verdict: 0 for verdict in VERDICTS})[verdict] = int(count)
    for counts in tally.values():
        decided = counts["actioned"] + counts["dismissed"]
        counts["precision"] = counts["actioned"] / decided if decided else None
    return dict(sorted(tally.items()))
