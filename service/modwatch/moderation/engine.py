"""Rule sets: load a rules file, evaluate an account against it, reload it when it changes."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from modwatch.moderation.detectors import (
    DETECTORS,
    Evidence,
    Material,
    TextMatcher,
    WaveMatch,
    gather,
    within,
)
from modwatch.moderation.rules import RulesError, read_rules
from modwatch.moderation.schema import TEXT_FIELDS, Rule

__all__ = ["Analysis", "Hit", "RuleSet", "RulesCache", "RulesError", "load_rules"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Hit:
    rule: str
    weight: float
    category: str
    field: str
    matched_text: str
    status_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "weight": self.weight,
            "category": self.category,
            "field": self.field,
            "matched_text": self.matched_text,
            "status_id": self.status_id,
        }


def _id_order(status_id: str) -> tuple[int, str]:
    # Mastodon ids are strings of digits: compare them as integers.
    return (int(status_id), status_id) if status_id.isdigit() else (0, status_id)


@dataclass(frozen=True)
class Analysis:
    account_id: str | None
    hits: list[Hit]
    # rule name -> (weight, category, position in the file), for the rules that hit
    _rules: dict[str, tuple[float, str, int]]
    # Instance rule ids named by the `violation` rules that hit, for the report.
    instance_rule_ids: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        """Each rule that hit counts its weight once, however much evidence it found."""
        return sum(weight for weight, _, _ in self._rules.values())

    @property
    def rule_names(self) -> list[str]:
        return list(self._rules)

    @property
    def status_ids(self) -> list[str]:
        return sorted({hit.status_id for hit in self.hits if hit.status_id is not None}, key=_id_order)

    @property
    def category(self) -> str | None:
        """The category of the heaviest rule that hit (the earliest in the file on a tie); rules with a
        negative weight (evidence against) never give it."""
        counted = [rule for rule in self._rules.values() if rule[0] > 0]
        if not counted:
            return None
        _, category, _ = max(counted, key=lambda rule: (rule[0], -rule[2]))
        return category

    def evidence_key(self) -> str:
        """Same account and same (rule, status) evidence -> same key, whatever the order it was found in."""
        evidence = sorted({(hit.rule, hit.status_id or "") for hit in self.hits})
        payload = json.dumps([self.account_id or "", evidence], separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "score": self.score,
            "category": self.category,
            "rule_names": self.rule_names,
            "status_ids": self.status_ids,
            "evidence_key": self.evidence_key(),
            "hits": [hit.as_dict() for hit in self.hits],
        }


class RuleSet:
    """The rules of one file, compiled once: text rules per field, account rules as a list."""

    def __init__(self, rules: list[Rule], report_threshold: float | None = None, hash: str = "", source: str = "",
                 allowed_domains: frozenset[str] = frozenset(), files: tuple[Path, ...] = ()) -> None:
        self.rules = rules
        self.report_threshold = report_threshold
        self.allowed_domains = allowed_domains
        self.files = files
        self.hash = hash
        self.source = source
        enabled = [rule for rule in rules if rule.enabled]
        self._position = {rule.name: index for index, rule in enumerate(rules)}
        text_rules = {
            field: [rule for rule in enabled if DETECTORS[rule.detector].find is None and field in rule.fields] for field in TEXT_FIELDS
        }
        # Fields read by the same rules (most rules read every text field) share one matcher, compiled once.
        matchers: dict[tuple[str, ...], TextMatcher] = {}
        self._text_matchers: dict[str, TextMatcher] = {}
        for field, rules in text_rules.items():
            if rules:
                key = tuple(rule.name for rule in rules)
                if key not in matchers:
                    matchers[key] = TextMatcher(rules)
                self._text_matchers[field] = matchers[key]
        self._account_rules = [(rule, find) for rule in enabled if (find := DETECTORS[rule.detector].find)]

    @property
    def wave_rules(self) -> list[Rule]:
        """The enabled `wave` rules: the caller looks their fingerprints up across accounts (`waves`)."""
        return [rule for rule, _ in self._account_rules if rule.detector == "wave"]

    def evaluate(self, account: dict[str, Any], statuses: list[dict[str, Any]], now: datetime | None = None,
                 waves: tuple[WaveMatch, ...] = (), material: Material | None = None) -> Analysis:
        """Score a public Account and its statuses.

        An Admin::Account is unwrapped to its public `account`: the admin fields (email, IP
        addresses, ...) are never matched. `waves` are the fingerprints this account shares with
        other accounts, which only the caller can know; `material` is `gather(account, statuses)`
        when the caller has it already.
        """
        if isinstance(account.get("account"), dict):
            account = account["account"]
        now = now or datetime.now(timezone.utc)
        material = material or gather(account, statuses, self.allowed_domains)
        if waves:
            material = replace(material, waves=tuple(waves))
        evidence: list[Evidence] = []
        for field, matcher in self._text_matchers.items():
            for snippet in material.texts.get(field, ()):
                found = matcher.scan(snippet.text)
                evidence.extend(Evidence(rule, field, text, snippet.status_id) for rule, text in found)
        account_id = account.get("id")
        for rule, find in self._account_rules:
            evidence.extend(find(rule, material, now))

        gated = {rule.name for rule in self.rules if rule.applies_to and not within(rule.applies_to, material, now)}
        hits: dict[tuple[str, str, str | None], Hit] = {}
        for item in evidence:
            if item.rule.name in gated:
                continue
            # The first match per rule, field and status is evidence enough.
            key = (item.rule.name, item.field, item.status_id)
            if key not in hits:
                hits[key] = Hit(item.rule.name, item.rule.weight, item.rule.category, item.field, item.matched_text, item.status_id)
        ordered = sorted(hits.values(), key=lambda hit: self._position[hit.rule])
        rules_hit = {hit.rule: (hit.weight, hit.category, self._position[hit.rule]) for hit in ordered}
        violated = tuple(dict.fromkeys(
            rule_id for item in evidence if item.rule.category == "violation" and item.rule.name not in gated
            for rule_id in item.rule.instance_rule_ids
        ))
        return Analysis(str(account_id) if account_id is not None else None, ordered, rules_hit, violated)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "hash": self.hash,
            "report_threshold": self.report_threshold,
            "allowed_domains": len(self.allowed_domains),
            "rules": [rule.as_dict() for rule in self.rules],
        }


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a rules file; raises RulesError naming the rule and field at fault."""
    source, parsed = read_rules(path)
    digest = hashlib.sha256(source)
    for listed in sorted(parsed.allowed_domains):
        digest.update(f"\n{listed}".encode())
    for rule in parsed.rules:
        digest.update(repr(rule.params.get("domains", ())).encode())
    return RuleSet(parsed.rules, parsed.report_threshold, digest.hexdigest(), str(path), parsed.allowed_domains, parsed.files)


class RulesCache:
    """The current RuleSet of a file, reloaded when its modification time or size (or that of a
    domain list it reads) changes.

    Workers call `get()` per job, so an edited file is picked up without a restart. An invalid
    edit is logged and the previous good rule set stays in force.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._signature: tuple[tuple[int, int], ...] | None = None
        self._ruleset: RuleSet | None = None

    def get(self) -> RuleSet:
        with self._lock:
            try:
                stat = os.stat(self.path)
                signature = ((stat.st_mtime_ns, stat.st_size), *self._list_signatures())
            except OSError as exc:
                if self._ruleset is None:
                    raise RulesError(f"{self.path.name}: cannot read {self.path}: {exc.strerror}") from None
                log.error("rules_reload_failed", path=str(self.path), error=exc.strerror, kept_hash=self._ruleset.hash)
                return self._ruleset
            ruleset = self._ruleset
            if signature != self._signature or ruleset is None:
                return self._reload(signature)
            return ruleset

    def _list_signatures(self) -> list[tuple[int, int]]:
        out = []
        for path in self._ruleset.files if self._ruleset else ():
            try:
                stat = os.stat(path)
                out.append((stat.st_mtime_ns, stat.st_size))
            except OSError:
                out.append((-1, -1))  # gone: reloading reports it, and the rules in force stay
        return out

    def _reload(self, signature: tuple[tuple[int, int], ...]) -> RuleSet:
        """The rule set in force after reading the file: the new one, or the previous one if it is invalid."""
        # Remember the version even when it is invalid, so a bad file is reported once, not per call.
        self._signature = signature
        try:
            ruleset = load_rules(self.path)
        except RulesError as exc:
            if self._ruleset is None:
                raise
            log.error("rules_reload_failed", path=str(self.path), error=str(exc), kept_hash=self._ruleset.hash)
            return self._ruleset
        if self._ruleset is None or ruleset.hash != self._ruleset.hash:
            log.info("rules_loaded", path=str(self.path), hash=ruleset.hash, rules=len(ruleset.rules))
        self._ruleset = ruleset
        return ruleset
