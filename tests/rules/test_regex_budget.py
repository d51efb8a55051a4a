"""The regex guard's two time limits: the probe at load and the budget per text at evaluation."""

import pytest
from structlog.testing import capture_logs

from modwatch.moderation.engine import RulesError

# Passes the probe (its texts never contain a `z`, so the lookahead fails at once) but backtracks
# cubically on a long run of `a` followed by `z`.
HIDDEN_SLOW = r"(?=\S*z)\s*a+\s*a+x"
HOSTILE = "a" * 4999 + "z"


def regex_rule(name, pattern, flags=()):
    return {"name": name, "detector": "regex", "pattern": pattern, **({"flags": list(flags)} if flags else {})}


@pytest.mark.parametrize(
    ("pattern", "flags"),
    [(r"\s*a+\s*a+x", ()), (r"\s*A+\s*a+x", ("ignorecase",)), (r"\s*a+\s*a+\s*a+$", ()), (r"\s* a+ \s* a+ x", ("verbose",))],
)
def test_probe_rejects_overlapping_quantifiers_naming_rule_and_field(ruleset, pattern, flags):
    with pytest.raises(RulesError) as raised:
        ruleset({"name": "ok-rule", "detector": "keyword", "keywords": ["x"]}, regex_rule("greedy-a", pattern, flags))
    assert str(raised.value).startswith("rules.yaml: rule 'greedy-a' (#2): field 'pattern': too slow: searching 2001 characters")


def test_probe_accepts_ordinary_patterns(ruleset):
    patterns = [r"https?://[a-z0-9.-]+\.example/\S*", r"\b[A-Z]{5,}!{2,}", r"\w+@\w+\.com", r"[^\s]+\s+[^\s]+", HIDDEN_SLOW]
    rules = ruleset(*(regex_rule(f"r{index}", pattern) for index, pattern in enumerate(patterns)))
    assert [rule.params["pattern"] for rule in rules.rules] == patterns


def test_timeout_is_a_miss_for_that_text_only_and_logged_once_per_rule(ruleset):
    rules = ruleset(
        {"name": "airdrop", "detector": "keyword", "keywords": ["airdrop"]},
        regex_rule("slow", HIDDEN_SLOW),
        regex_rule("fast", r"\bair\w+"),
    )
    statuses = [
        {"id": "1", "content": f"airdrop {HOSTILE}"},
        {"id": "2", "content": HOSTILE, "spoiler_text": HOSTILE},
        {"id": "3", "content": "aaxz"},
    ]
    with capture_logs() as logs:
        analysis = rules.evaluate({"id": "9", "display_name": "airdrop here"}, statuses)

    hits = {(hit.rule, hit.field, hit.status_id) for hit in analysis.hits}
    assert hits == {
        ("airdrop", "display_name", None),
        ("fast", "display_name", None),
        ("airdrop", "status_text", "1"),
        ("fast", "status_text", "1"),
        # The slow rule missed the hostile texts, and still ran on the status after them.
        ("slow", "status_text", "3"),
    }
    timeouts = [entry for entry in logs if entry["event"] == "rule_regex_timeout"]
    assert [(entry["rule"], entry["account_id"], entry["log_level"]) for entry in timeouts] == [("slow", "9", "warning")]


def test_timeout_never_raises_and_other_rules_still_score(ruleset):
    rules = ruleset(regex_rule("slow", HIDDEN_SLOW), {"name": "hostile", "detector": "keyword", "keywords": ["aaaz"],
                                                      "whole_word": False, "weight": 4})
    analysis = rules.evaluate({"id": "9", "note": HOSTILE}, [])
    assert (analysis.rule_names, analysis.score) == (["hostile"], 4)


def test_flags_are_translated_by_name_for_the_regex_module(ruleset):
    # re.ASCII and regex.ASCII differ in value: passing re's flags through would silently change meaning.
    rules = ruleset(regex_rule("ascii-word", r"^\w+$", ["ascii"]), regex_rule("unicode-word", r"^\w+$"))
    assert rules.evaluate({"id": "1", "username": "café"}, []).rule_names == ["unicode-word"]
    assert rules.evaluate({"id": "1", "username": "cafe"}, []).rule_names == ["ascii-word", "unicode-word"]


def test_a_scan_that_timed_out_is_not_remembered_so_the_text_is_searched_again(ruleset):
    rules = ruleset(regex_rule("slow", HIDDEN_SLOW), regex_rule("fast", r"\bair\w+"))
    statuses = [{"id": "1", "content": f"airdrop {HOSTILE}"}]
    for _ in range(2):  # the second analysis of the same posts, as the stream does at each new post
        with capture_logs() as logs:
            analysis = rules.evaluate({"id": "9"}, statuses)
        assert analysis.rule_names == ["fast"]
        assert [entry["rule"] for entry in logs if entry["event"] == "rule_regex_timeout"] == ["slow"]


def test_a_scanned_text_is_remembered_with_its_matches_and_the_least_recent_forgotten(ruleset, monkeypatch):
    from modwatch.moderation import detectors

    monkeypatch.setattr(detectors, "SCAN_CACHE_SIZE", 2)
    rules = ruleset({"name": "airdrop", "detector": "keyword", "keywords": ["airdrop"]}, regex_rule("fast", r"\bair\w+"))
    matcher = rules._text_matchers["status_text"]
    first = matcher.scan("claim your airdrop", set())
    assert [(rule.name, text) for rule, text in first] == [("airdrop", "airdrop"), ("fast", "airdrop")]
    assert matcher.scan("claim your airdrop", set()) is first  # remembered, not searched again
    matcher.scan("birds", set())
    matcher.scan("claim your airdrop", set())  # used again: "birds" is now the least recent
    matcher.scan("maps", set())
    assert matcher.scan("claim your airdrop", set()) is first and len(matcher._found) == 2
    matcher.scan("birds", set())
    matcher.scan("maps", set())
    forgotten = matcher.scan("claim your airdrop", set())
    assert forgotten is not first and forgotten == first  # searched again, with the same result
