"""Scoring, evidence, real Mastodon payloads and hot reload."""

import os
from datetime import datetime, timezone

import pytest

from modwatch.moderation.engine import RulesCache, RulesError, load_rules
from modwatch.settings import DEFAULT_RULES_FILE

NOW = datetime(2026, 8, 1, 14, 0, tzinfo=timezone.utc)


@pytest.fixture
def scoring(ruleset):
    return ruleset(
        {"name": "scam", "detector": "keyword", "keywords": ["scam", "fraud"], "weight": 2, "category": "spam"},
        {"name": "threat", "detector": "keyword", "keywords": ["threat"], "weight": 5, "category": "violation",
         "instance_rule_ids": ["2", "7"]},
        {"name": "off", "detector": "keyword", "keywords": ["scam"], "weight": 9, "enabled": False},
    )


def test_a_rule_counts_once_however_many_hits(scoring):
    statuses = [{"id": str(i), "content": "scam fraud scam"} for i in (10, 9, 100)]
    analysis = scoring.evaluate({"id": "1", "note": "scam"}, statuses)
    assert analysis.score == 2
    assert analysis.rule_names == ["scam"]
    assert analysis.status_ids == ["9", "10", "100"]  # numeric order, as Mastodon ids compare
    assert len(analysis.hits) == 4  # one piece of evidence per status and field
    assert analysis.category == "spam"


def test_score_sums_rules_and_category_is_the_heaviest(scoring):
    analysis = scoring.evaluate({"id": "1", "display_name": "scam"}, [{"id": "3", "content": "a threat"}])
    assert analysis.score == 7
    assert analysis.category == "violation"
    assert analysis.instance_rule_ids == ("2", "7")  # what a violation report names
    assert analysis.as_dict()["hits"][1] == {
        "rule": "threat", "weight": 5, "category": "violation", "field": "status_text", "matched_text": "threat", "status_id": "3",
    }


def test_clean_account_scores_nothing(scoring):
    analysis = scoring.evaluate({"id": "1", "display_name": "hello"}, [])
    assert (analysis.score, analysis.hits, analysis.category, analysis.status_ids) == (0, [], None, [])
    assert analysis.instance_rule_ids == ()


def test_evidence_key_is_stable_and_order_independent(scoring):
    statuses = [{"id": "5", "content": "scam"}, {"id": "6", "content": "threat"}]
    key = scoring.evaluate({"id": "1"}, statuses).evidence_key()
    assert scoring.evaluate({"id": "1"}, list(reversed(statuses))).evidence_key() == key
    # Different words, same rules and statuses: the same evidence for report dedupe.
    assert scoring.evaluate({"id": "1"}, [{"id": "5", "content": "fraud"}, {"id": "6", "content": "threat"}]).evidence_key() == key
    assert scoring.evaluate({"id": "2"}, statuses).evidence_key() != key
    assert scoring.evaluate({"id": "1"}, statuses[:1]).evidence_key() != key


def test_admin_wrapper_fields_never_match(ruleset, docs_example):
    admin_account = docs_example("Admin_Account.example.json")
    rules = ruleset(
        {"name": "admin-leak", "detector": "keyword", "keywords": ["admin@mastodon.local", "192.168.42.1", "Owner"], "whole_word": False},
        {"name": "ip", "detector": "regex", "pattern": r"\d+\.\d+\.\d+\.\d+"},
    )
    assert rules.evaluate(admin_account["account"], []).score == 0
    # Handed the whole wrapper, the engine still reads only the public account inside it.
    rules = ruleset({"name": "name", "detector": "keyword", "keywords": ["impostor"], "fields": ["username"]})
    analysis = rules.evaluate({**admin_account, "username": "impostor"}, [])
    assert analysis.score == 0 and analysis.account_id == admin_account["account"]["id"]


def test_real_recorded_account_and_statuses_are_clean_under_the_default_rules(cassette_bodies, docs_example):
    statuses = [body for uri, body in cassette_bodies("test_fetch_next_previous.yaml") if "limit=5" in uri]
    statuses = [status for page in statuses for status in page]
    account = statuses[0]["account"]
    ruleset = load_rules(DEFAULT_RULES_FILE)
    # The recorded test account is hours old, has no followers and posted 23 times: its age is the
    # one thing it may be scored for; nothing it posted matches, and it stays below the threshold.
    young = {"new-account", "new-account-burst"}
    analysis = ruleset.evaluate(account, statuses, now=NOW)
    assert len(statuses) == 15 and set(analysis.rule_names) <= young
    assert analysis.score < ruleset.report_threshold
    single = [body for uri, body in cassette_bodies("test_status.yaml") if uri.endswith("/statuses/117020583223442465")][0]
    scored = ruleset.evaluate(single["account"], [single], now=NOW)
    assert set(scored.rule_names) <= young and scored.score < ruleset.report_threshold
    verified = [body for uri, body in cassette_bodies("test_account.yaml") if uri.endswith("verify_credentials")][0]
    assert ruleset.evaluate(verified, [], now=NOW).score < ruleset.report_threshold
    example = docs_example("Status.example.json")
    assert ruleset.evaluate(docs_example("Account.example.json"), [example], now=NOW).score == 0


def test_real_status_with_spam_injected_scores(ruleset, cassette_bodies):
    status = [body for uri, body in cassette_bodies("test_status.yaml") if "/statuses/" in uri][0]
    rules = ruleset(
        {"name": "toot", "detector": "keyword", "keywords": ["toot"], "fields": ["status_text"], "weight": 2},
        {"name": "lennon", "detector": "keyword", "keywords": ["lennon"], "fields": ["display_name"], "weight": 3},
        {"name": "bread", "detector": "keyword", "keywords": ["toasty"], "fields": ["fields"], "weight": 4},
    )
    analysis = rules.evaluate(status["account"], [status], now=NOW)
    assert analysis.rule_names == ["toot", "lennon", "bread"] and analysis.score == 9
    assert analysis.status_ids == [status["id"]]


def test_ruleset_as_dict(write_rules):
    path = write_rules("version: 1\nreport_threshold: 4.5\nrules: []\n")
    ruleset = load_rules(path)
    assert ruleset.as_dict() == {"source": str(path), "hash": ruleset.hash, "report_threshold": 4.5, "allowed_domains": 0,
                                 "rules": []}


RULE = "version: 1\nrules:\n  - name: {name}\n    detector: keyword\n    keywords: [{word}]\n    weight: 1\n    category: spam\n"


def touch_later(path, text, step):
    """Write and move mtime forward so the change is visible even on coarse-mtime filesystems."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + step * 1_000_000_000))


def test_rules_cache_reloads_on_change_and_keeps_the_last_good_rules(write_rules, caplog):
    path = write_rules(RULE.format(name="first", word="alpha"))
    cache = RulesCache(path)
    first = cache.get()
    assert cache.get() is first  # unchanged file: no reload
    assert first.evaluate({"id": "1", "note": "alpha"}, []).rule_names == ["first"]

    touch_later(path, RULE.format(name="second", word="beta"), 1)
    second = cache.get()
    assert second.hash != first.hash
    assert second.evaluate({"id": "1", "note": "beta"}, []).rule_names == ["second"]

    touch_later(path, RULE.format(name="broken", word="beta") + "    weight: 0\n", 2)
    assert cache.get() is second
    assert cache.get() is second

    touch_later(path, RULE.format(name="third", word="gamma"), 3)
    assert [rule.name for rule in cache.get().rules] == ["third"]

    path.unlink()
    assert [rule.name for rule in cache.get().rules] == ["third"]


def test_rules_cache_with_no_good_rules_raises(write_rules):
    path = write_rules("version: 1\nrules: nope\n")
    with pytest.raises(RulesError, match="field 'rules'"):
        RulesCache(path).get()
    cache = RulesCache(path)
    with pytest.raises(RulesError):
        cache.get()
    touch_later(path, RULE.format(name="fixed", word="x"), 1)
    assert [rule.name for rule in cache.get().rules] == ["fixed"]


def test_a_scanned_text_is_remembered_with_its_matches_and_the_least_recent_forgotten(ruleset, monkeypatch):
    from modwatch.moderation import detectors

    monkeypatch.setattr(detectors, "SCAN_CACHE_SIZE", 2)
    rules = ruleset({"name": "airdrop", "detector": "keyword", "keywords": ["airdrop"]},
                    {"name": "fast", "detector": "regex", "pattern": r"\bair\w+"})
    matcher = rules._text_matchers["status_text"]
    first = matcher.scan("claim your airdrop")
    assert [(rule.name, text) for rule, text in first] == [("airdrop", "airdrop"), ("fast", "airdrop")]
    assert matcher.scan("claim your airdrop") is first  # remembered, not searched again
    matcher.scan("birds")
    matcher.scan("claim your airdrop")  # used again: "birds" is now the least recent
    matcher.scan("maps")
    assert matcher.scan("claim your airdrop") is first and len(matcher._found) == 2
    matcher.scan("birds")
    matcher.scan("maps")
    forgotten = matcher.scan("claim your airdrop")
    assert forgotten is not first and forgotten == first  # searched again, with the same result
