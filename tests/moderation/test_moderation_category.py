"""The category and instance rule ids a report is filed with."""

from modwatch.moderation.analysis import Scored
from modwatch.moderation.engine import load_rules
from modwatch.moderation.reports import category_for

RULES = """\
version: 1
rules:
  - name: threats
    detector: keyword
    keywords: [threat]
    weight: 5
    category: violation
    instance_rule_ids: ["3", "9"]
  - name: scam
    detector: keyword
    keywords: [scam]
    weight: 2
    category: spam
"""


def scored(tmp_path, text: str) -> Scored:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    rules = load_rules(path)
    account = {"id": "1", "username": "someone"}
    return Scored(account, rules.evaluate(account, [{"id": "5", "content": text}]), 1, rules.hash)


def test_violation_report_names_the_instance_rules(tmp_path):
    assert category_for(scored(tmp_path, "a threat and a scam")) == ("violation", ["3", "9"])


def test_other_categories_name_no_rules(tmp_path):
    assert category_for(scored(tmp_path, "just a scam")) == ("spam", None)
