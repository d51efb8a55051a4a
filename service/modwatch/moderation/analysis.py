"""Scoring one account: fetch what the rules read, evaluate, keep the evidence.

Every analysis is stored with its evidence and the status count it saw, so polling can tell when
an account has posted since and the API can show why an account was (or was not) reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from modwatch.mastodon.client import MastodonClient
from modwatch.connection import get_redis
from modwatch.moderation import waves
from modwatch.moderation.detectors import age_days, gather, young_for_waves
from modwatch.moderation.engine import Analysis, RuleSet, RulesCache
from modwatch.moderation.runtime import Runtime, report_threshold
from modwatch.settings import Settings
from modwatch.storage.db import session_scope
from modwatch.storage.models import AccountAnalysis, AuditEntry
from modwatch.telemetry.metrics import ACCOUNTS_SCANNED, RULE_HITS, WAVES_ACTIVE

# How many recent statuses an analysis reads: Mastodon's page maximum, one request.
RECENT_STATUSES = 40
SOURCES = ("poll_remote", "poll_local", "webhook", "stream", "evaluate", "manual")

_caches: dict[Path, RulesCache] = {}


def current_rules(settings: Settings) -> RuleSet:
    """The rule set of RULES_FILE, reloaded when the file changes."""
    path = Path(settings.rules_file)
    if path not in _caches:
        _caches[path] = RulesCache(path)
    return _caches[path].get()


def metric_source(source: str) -> str:
    """Sources are free text from triggers; metric labels stay bounded."""
    return source if source in SOURCES else "manual"


def domain_of(account: dict[str, Any]) -> str | None:
    """The remote domain of a public Account (`acct` is `user@domain`), None for a local one."""
    _, at, domain = str(account.get("acct") or "").partition("@")
    return domain.lower() if at and domain else None


def public_account(account: dict[str, Any]) -> dict[str, Any]:
    """The public Account of an Admin::Account, or the Account itself."""
    inner = account.get("account")
    return inner if isinstance(inner, dict) else account


def fetch_account_and_statuses(client: MastodonClient, account_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The account's recent statuses and the account itself, in one request when it has posted."""
    statuses = client.account_statuses(account_id, limit=RECENT_STATUSES)
    if statuses and isinstance(statuses[0].get("account"), dict):
        return statuses[0]["account"], statuses
    # No status to carry the account. The wrapper has no account lookup yet; go through its call path.
    account = client.account(account_id)
    return account, statuses


@dataclass(frozen=True)
class Scored:
    account: dict[str, Any]
    analysis: Analysis
    threshold: float
    rules_hash: str
    # Accounts in a wave this analysis completed: scored before the wave existed, worth another look.
    wave_members: tuple[str, ...] = ()

    @property
    def reportable(self) -> bool:
        return bool(self.analysis.hits) and self.analysis.score >= self.threshold


def score(account: dict[str, Any], statuses: list[dict[str, Any]], settings: Settings, runtime: Runtime,
          index: waves.WaveIndex | None = None, record: bool = True, now: datetime | None = None,
          rules: RuleSet | None = None) -> Scored:
    """Score an account and its posts; with `wave` rules, its posts are looked up across accounts in
    `index` (the shared Redis index by default) and, when `record`, added to it."""
    return score_many([(account, statuses)], settings, runtime, index, record, now, rules)[0]


def score_many(accounts: list[tuple[dict[str, Any], list[dict[str, Any]]]], settings: Settings, runtime: Runtime,
               index: waves.WaveIndex | None = None, record: bool = True, now: datetime | None = None,
               rules: RuleSet | None = None) -> list[Scored]:
    """`score` for each (account, statuses) in turn, with one wave-index call for them all: the
    same results as scoring them one after the other."""
    rules = rules or current_rules(settings)
    now = now or datetime.now(timezone.utc)
    accounts = [(public_account(account), statuses) for account, statuses in accounts]
    materials = [gather(account, statuses) for account, statuses in accounts]
    observed = observe_waves(rules, [account for account, _ in accounts], materials, now, index, record)
    threshold = report_threshold(runtime, rules.report_threshold, settings) if runtime is not None else (
        rules.report_threshold or settings.report_threshold)
    return [Scored(account, rules.evaluate(account, statuses, now=now, waves=seen.matches, material=material),
                   threshold, rules.hash, seen.earlier_members)
            for (account, statuses), material, seen in zip(accounts, materials, observed)]


def observe_waves(rules: RuleSet, accounts: list[dict[str, Any]], materials: list, now: datetime,
                  index: waves.WaveIndex | None, record: bool) -> list[waves.Observed]:
    """The waves each account's posts belong to, under the first enabled `wave` rule's parameters;
    young accounts' posts are added to the index when `record`."""
    wave_rules = rules.wave_rules
    if not wave_rules:
        return [waves.NOTHING] * len(accounts)
    params = wave_rules[0].params
    # An account no wave rule applies to (too old for every one) is neither fingerprinted nor looked up:
    # most posts on a federated timeline are by accounts years old, and each lookup is Redis work.
    oldest = max(rule.params["max_account_age_days"] for rule in wave_rules)
    eligible = [bool(material.posts) and str(account.get("id", "")).isdigit() and young_for_waves(material, now, oldest)
                for account, material in zip(accounts, materials)]
    looked_up = [(str(account["id"]), material, record and _young(material, now, params["max_account_age_days"]))
                 for account, material, ok in zip(accounts, materials, eligible) if ok]
    live = index is None
    index = index or waves.RedisWaves(get_redis())
    results = waves.observe_many(index, looked_up, now, params["min_accounts"], params["window_seconds"],
                                 params["kinds"], rules.allowed_domains)
    if live and any(recorded for _, _, recorded in looked_up):
        # Once per call, with the fingerprints of every recorded account: the same set and gauge as once per account.
        active = [key for (_, _, recorded), seen in zip(looked_up, results) if recorded for key in seen.active_keys]
        WAVES_ACTIVE.set(waves.mark_active(get_redis(), active, now.timestamp(), params["window_seconds"]))
    found = iter(results)
    return [next(found) if ok else waves.NOTHING for ok in eligible]


def _young(material, now: datetime, max_age_days: float) -> bool:
    age = age_days(material, now)
    return age is not None and age <= max_age_days


def record(scored: Scored, source: str) -> None:
    """Store the analysis and its audit entry; count it."""
    account, analysis = scored.account, scored.analysis
    with session_scope() as session:
        session.add(AccountAnalysis(
            account_id=str(account.get("id")),
            acct=str(account.get("acct") or ""),
            domain=domain_of(account),
            source=source,
            score=analysis.score,
            threshold=scored.threshold,
            rule_names=analysis.rule_names,
            evidence=[hit.as_dict() for hit in analysis.hits],
            evidence_key=analysis.evidence_key(),
            rules_hash=scored.rules_hash,
            statuses_count=account.get("statuses_count"),
            last_status_at=account.get("last_status_at"),
        ))
        session.add(AuditEntry(
            decision="analysed", account_id=str(account.get("id")), source=source,
            reason=f"score {analysis.score:g} of {scored.threshold:g}" + (
                f" ({', '.join(analysis.rule_names)})" if analysis.rule_names else ""),
        ))
    ACCOUNTS_SCANNED.labels(source=metric_source(source)).inc()
    for name in analysis.rule_names:
        RULE_HITS.labels(rule=name).inc()


def last_seen(account_ids: list[str]) -> dict[str, tuple[int | None, str | None]]:
    """(statuses_count, last_status_at) of each account's latest analysis."""
    if not account_ids:
        return {}
    latest = (
        select(AccountAnalysis.account_id, func.max(AccountAnalysis.id).label("id"))
        .where(AccountAnalysis.account_id.in_(account_ids))
        .group_by(AccountAnalysis.account_id)
        .subquery()
    )
    query = select(AccountAnalysis.account_id, AccountAnalysis.statuses_count, AccountAnalysis.last_status_at).join(
        latest, AccountAnalysis.id == latest.c.id
    )
    with session_scope() as session:
        return {row.account_id: (row.statuses_count, row.last_status_at) for row in session.execute(query)}
