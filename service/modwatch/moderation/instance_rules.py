"""The instance rule ids the rules file names, checked against the instance's own rules.

A `violation` report names instance rules, and Mastodon refuses (422) an id it does not know
(app/models/report.rb, `validate_rule_ids`). `modwatch check-config` and every worker at start
check the ids of the rules file against `GET /api/v1/instance/rules`, so a rule deleted or
renumbered on the instance is named before a report depends on it. (At filing, a 422 still drops
the stale ids and files the report: see reports.py.)
"""

from __future__ import annotations

from typing import Any

from modwatch.mastodon.client import MastodonClient
from modwatch.moderation.analysis import current_rules
from modwatch.moderation.engine import RuleSet
from modwatch.settings import Settings


def stale_rule_ids(rules: RuleSet, instance_rules: list[dict[str, Any]]) -> list[str]:
    """One line per rule of the file that names an instance rule id the instance does not list."""
    listed = sorted({str(rule.get("id")) for rule in instance_rules}, key=lambda i: (len(i), i))
    problems = []
    for rule in rules.rules:
        missing = [rule_id for rule_id in rule.instance_rule_ids if rule_id not in listed]
        if missing:
            problems.append(f"rule '{rule.name}' names instance rule id {', '.join(missing)}, which the instance "
                            f"does not list (its rules: {', '.join(listed) or 'none'})")
    return problems


def check(client: MastodonClient, settings: Settings) -> str:
    """A line for check-config; raises ValueError naming every rule with a stale id."""
    rules = current_rules(settings)
    problems = stale_rule_ids(rules, client.instance_rules())
    if problems:
        raise ValueError("; ".join(problems))
    named = sorted({rule_id for rule in rules.rules for rule_id in rule.instance_rule_ids})
    return f"instance rule ids named by the rules file: {', '.join(named) or 'none'}; all exist"
