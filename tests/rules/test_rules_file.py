"""Loading and validating rules files."""

import pytest

from modwatch.moderation.engine import RulesError, load_rules
from modwatch.settings import DEFAULT_RULES_FILE

GOOD_RULE = """\
  - name: crypto-scam
    detector: keyword
    keywords: [airdrop]
    weight: 3
    category: spam
"""


def error_for(write_rules, text):
    with pytest.raises(RulesError) as raised:
        load_rules(write_rules(text))
    return str(raised.value)


def rules_file(*rules):
    return "version: 1\nrules:\n" + "".join(rules)


def test_default_rules_file_loads_with_every_detector():
    ruleset = load_rules(DEFAULT_RULES_FILE)
    assert ruleset.report_threshold == 10
    assert {rule.detector for rule in ruleset.rules} == {
        "keyword", "regex", "posting_rate", "duplicate_content", "link_domain",
        "new_account_burst", "media_alt_text", "media_mime", "new_account", "profile", "mentions", "wave",
    }
    assert len(ruleset.hash) == 64


def test_valid_file_applies_defaults_and_serialises(write_rules):
    ruleset = load_rules(write_rules(rules_file(GOOD_RULE)))
    rule = ruleset.rules[0]
    assert (rule.enabled, rule.params["whole_word"], rule.params["case_sensitive"]) == (True, True, False)
    assert "status_text" in rule.fields
    assert ruleset.report_threshold is None
    listed = ruleset.as_dict()["rules"][0]
    assert listed["keywords"] == ["airdrop"] and listed["weight"] == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("    weight: 0\n", "rules.yaml: rule 'crypto-scam' (#2): field 'weight': must be a number other than 0 (negative: evidence against spam)"),
        ("    weight: lots\n", "rules.yaml: rule 'crypto-scam' (#2): field 'weight': must be a number other than 0 (negative: evidence against spam)"),
        ("    category: scam\n", "rules.yaml: rule 'crypto-scam' (#2): field 'category': 'scam' is not one of spam, legal, violation, other"),
        ("    detector: telepathy\n", "rules.yaml: rule 'crypto-scam' (#2): field 'detector': 'telepathy' is not one of"),
        ("    keywords: []\n", "rules.yaml: rule 'crypto-scam' (#2): field 'keywords': must be a non-empty list"),
        ("    whole_word: yes please\n", "rules.yaml: rule 'crypto-scam' (#2): field 'whole_word': must be true or false"),
        ("    fields: [email]\n", "rules.yaml: rule 'crypto-scam' (#2): field 'fields': 'email' is not one of"),
        ("    colour: red\n", "rules.yaml: rule 'crypto-scam' (#2): field 'colour': unknown for detector 'keyword'"),
        ("    pattern: x\n", "rules.yaml: rule 'crypto-scam' (#2): field 'pattern': unknown for detector 'keyword'"),
    ],
)
def test_rule_errors_name_the_rule_and_the_field(write_rules, change, message):
    key = change.split(":")[0]
    rule = "".join(line + "\n" for line in GOOD_RULE.splitlines() if not line.startswith(key)) + change
    assert error_for(write_rules, rules_file(GOOD_RULE.replace("crypto-scam", "first"), rule)).startswith(message)


def test_missing_required_field_and_nameless_rule(write_rules):
    assert error_for(write_rules, rules_file(GOOD_RULE.replace("    weight: 3\n", ""))) == (
        "rules.yaml: rule 'crypto-scam' (#1): field 'weight': required"
    )
    assert error_for(write_rules, rules_file(GOOD_RULE.replace("  - name: crypto-scam\n    detector", "  - detector"))) == (
        "rules.yaml: rule #1: field 'name': required"
    )
    assert error_for(write_rules, rules_file("  - just a string\n")) == "rules.yaml: rule #1: must be a mapping"


def test_behavioural_detector_errors(write_rules):
    rate = "  - name: burst\n    detector: posting_rate\n    weight: 1\n    category: spam\n    max_statuses: 0\n    window_seconds: 60\n"
    assert error_for(write_rules, rules_file(rate)) == "rules.yaml: rule 'burst' (#1): field 'max_statuses': must be an integer >= 1"
    links = "  - name: links\n    detector: link_domain\n    weight: 1\n    category: spam\n"
    assert error_for(write_rules, rules_file(links)).startswith("rules.yaml: rule 'links' (#1): field 'domains': one of 'domains' or")
    fields = "  - name: burst\n    detector: posting_rate\n    weight: 1\n    category: spam\n    max_statuses: 1\n    window_seconds: 60\n    fields: [note]\n"
    assert error_for(write_rules, rules_file(fields)) == "rules.yaml: rule 'burst' (#1): field 'fields': unknown for detector 'posting_rate'"


def test_duplicate_rule_names(write_rules):
    assert error_for(write_rules, rules_file(GOOD_RULE, GOOD_RULE)) == (
        "rules.yaml: rule 'crypto-scam' (#2): field 'name': duplicate of rule #1"
    )


def test_top_level_errors(write_rules):
    assert error_for(write_rules, "rules: []\n") == "rules.yaml: field 'version': required"
    assert error_for(write_rules, "version: 2\nrules: []\n") == "rules.yaml: field 'version': must be 1"
    assert error_for(write_rules, "version: 1\nrules: []\nthreshold: 3\n") == "rules.yaml: field 'threshold': unknown top-level key"
    assert error_for(write_rules, "version: 1\nreport_threshold: -1\nrules: []\n") == (
        "rules.yaml: field 'report_threshold': must be a number > 0"
    )
    assert error_for(write_rules, "version: 1\nrules: {}\n") == "rules.yaml: field 'rules': must be a list of rules"
    assert error_for(write_rules, "- a list\n") == "rules.yaml: must be a mapping with 'version' and 'rules'"
    assert error_for(write_rules, "version: 1\nrules: [\n").startswith("rules.yaml: invalid YAML:")
    assert "duplicate key 'weight'" in error_for(write_rules, rules_file(GOOD_RULE + "    weight: 4\n"))


def test_unreadable_file(tmp_path):
    with pytest.raises(RulesError, match=r"^missing.yaml: cannot read"):
        load_rules(tmp_path / "missing.yaml")


def regex_rule(pattern):
    return rules_file(f"  - name: pattern-rule\n    detector: regex\n    weight: 1\n    category: spam\n    pattern: '{pattern}'\n")


@pytest.mark.parametrize("pattern", [r"\b0x[0-9a-f]{40}\b", r"(\d{3}-)+\d{4}", r"(a+)?b", r"(?:free|cheap)\s+\w+", r"(a+)+$"])
def test_regex_accepts_ordinary_and_nested_patterns(write_rules, pattern):
    assert load_rules(write_rules(regex_rule(pattern))).rules[0].params["pattern"] == pattern


def test_adversarial_input_completes_on_an_accepted_pattern(write_rules):
    # A backtracking engine is quadratic here (each start position scans the run of word characters); RE2 is linear.
    ruleset = load_rules(write_rules(regex_rule(r"\w+@\w+\.com")))
    statuses = [{"id": "1", "content": "a" * 200_000 + "!"}, {"id": "2", "content": "<p>mail me at x@y.com</p>"}]
    analysis = ruleset.evaluate({"id": "1", "display_name": "a" * 100_000}, statuses)
    assert [(hit.status_id, hit.matched_text) for hit in analysis.hits] == [("2", "x@y.com")]


def test_violation_rules_name_the_instance_rules(write_rules):
    violation = GOOD_RULE.replace("category: spam", "category: violation")
    message = error_for(write_rules, rules_file(violation))
    assert "rule 'crypto-scam' (#1): field 'instance_rule_ids': required when category is 'violation'" in message
    bad_ids = violation + "    instance_rule_ids: [first]\n"
    assert "field 'instance_rule_ids': must contain only rule ids" in error_for(write_rules, rules_file(bad_ids))
    ruleset = load_rules(write_rules(rules_file(violation + "    instance_rule_ids: [3, '4']\n")))
    assert ruleset.rules[0].instance_rule_ids == ("3", "4")
    assert ruleset.as_dict()["rules"][0]["instance_rule_ids"] == ["3", "4"]
