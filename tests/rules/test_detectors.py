"""Each detector: a case that hits and one that does not."""

from datetime import datetime, timedelta, timezone

import pytest

NOW = datetime(2026, 8, 1, 12, 0, tzinfo=timezone.utc)


def status(status_id, content="", seconds_ago=3600, **extra):
    return {"id": str(status_id), "content": content, "created_at": (NOW - timedelta(seconds=seconds_ago)).isoformat(), **extra}


def hits(ruleset, account=None, statuses=()):
    return ruleset.evaluate(account or {"id": "1"}, list(statuses), now=NOW).hits


# -- keyword --


def test_keyword_hits_whole_words_only(ruleset):
    rules = ruleset({"name": "scam", "detector": "keyword", "keywords": ["scam"]})
    assert [hit.matched_text for hit in hits(rules, statuses=[status(1, "<p>This is a SCAM!</p>")])] == ["SCAM"]
    assert hits(rules, statuses=[status(1, "<p>I love scampi and scammers</p>")]) == []


def test_keyword_whole_word_false_matches_inside_words(ruleset):
    rules = ruleset({"name": "crypto", "detector": "keyword", "keywords": ["crypto"], "whole_word": False})
    assert [hit.matched_text for hit in hits(rules, statuses=[status(1, "cryptocurrency")])] == ["crypto"]


def test_keyword_case_sensitive(ruleset):
    rules = ruleset({"name": "acronym", "detector": "keyword", "keywords": ["NFT"], "case_sensitive": True})
    assert hits(rules, statuses=[status(1, "nft drop")]) == []
    assert len(hits(rules, statuses=[status(1, "NFT drop")])) == 1


def test_keyword_is_unicode_aware(ruleset):
    rules = ruleset({"name": "de", "detector": "keyword", "keywords": ["ÜBERWEISUNG", "straße"]})
    found = hits(rules, statuses=[status(1, "Bitte Überweisung jetzt"), status(2, "Hauptstraßenbahn"), status(3, "STRASSE")])
    assert [(hit.status_id, hit.matched_text) for hit in found] == [("1", "Überweisung"), ("3", "STRASSE")]


def test_keyword_phrases_need_the_words_in_sequence(ruleset):
    rules = ruleset({"name": "giveaway", "detector": "keyword", "keywords": ["bitcoin giveaway"]})
    assert [hit.matched_text for hit in hits(rules, statuses=[status(1, "huge Bitcoin\n giveaway")])] == ["Bitcoin\n giveaway"]
    assert hits(rules, statuses=[status(1, "bitcoin, giveaway"), status(2, "giveaway bitcoin")]) == []


def test_overlapping_keywords_of_different_rules_both_hit(ruleset):
    rules = ruleset(
        {"name": "short", "detector": "keyword", "keywords": ["bitcoin"]},
        {"name": "long", "detector": "keyword", "keywords": ["free bitcoin now"]},
        {"name": "dotted", "detector": "keyword", "keywords": ["bit.ly", "bit"]},
    )
    found = hits(rules, statuses=[status(1, "get free bitcoin now via bit.ly")])
    assert sorted(hit.rule for hit in found) == ["dotted", "long", "short"]


def test_keyword_with_punctuation_respects_word_edges(ruleset):
    rules = ruleset({"name": "short", "detector": "keyword", "keywords": ["bit.ly"]})
    assert len(hits(rules, statuses=[status(1, "see bit.ly/abc")])) == 1
    assert hits(rules, statuses=[status(1, "see orbit.lyrics")]) == []


def test_keyword_reads_only_its_fields(ruleset):
    rules = ruleset({"name": "scam", "detector": "keyword", "keywords": ["scam"], "fields": ["note"]})
    assert hits(rules, {"id": "1", "display_name": "scam"}, [status(1, "scam")]) == []
    found = hits(rules, {"id": "1", "note": "<p>a <b>scam</b></p>"})
    assert [(hit.field, hit.status_id) for hit in found] == [("note", None)]


def test_keyword_reads_profile_fields_spoilers_and_alt_text(ruleset):
    rules = ruleset({"name": "scam", "detector": "keyword", "keywords": ["scam"]})
    account = {"id": "1", "fields": [{"name": "Website", "value": '<a href="https://x.example">scam</a>'}, "junk"]}
    statuses = [status(1, spoiler_text="scam"), status(2, media_attachments=[{"type": "image", "description": "a scam"}])]
    assert sorted((hit.field, hit.status_id) for hit in hits(rules, account, statuses)) == [
        ("fields", None),
        ("media_description", "2"),
        ("spoiler_text", "1"),
    ]


# -- regex --


def test_regex_hits_and_misses(ruleset):
    rules = ruleset({"name": "wallet", "detector": "regex", "pattern": r"\b0x[0-9a-f]{40}\b", "flags": ["ignorecase"]})
    assert len(hits(rules, statuses=[status(1, "send to 0x" + "AB" * 20)])) == 1
    assert hits(rules, statuses=[status(1, "send to 0x1234")]) == []


def test_rules_behind_one_gate_each_report_their_own_first_match(ruleset):
    rules = ruleset(
        {"name": "casino", "detector": "regex", "pattern": r"casino\s+bonus", "flags": ["ignorecase"]},
        {"name": "telegram", "detector": "regex", "pattern": r"t\.me/\w+", "flags": ["ignorecase"]},
        {"name": "casino-again", "detector": "regex", "pattern": r"casino\s+bonus", "flags": ["ignorecase"]},
        {"name": "shouting", "detector": "regex", "pattern": r"(?i)win big"},
        {"name": "exact", "detector": "regex", "pattern": r"Free Money"},  # no flags: the others' (?i) must not reach it
        {"name": "short-links", "detector": "keyword", "keywords": ["bit.ly", "t.co"]},
        {"name": "shop", "detector": "keyword", "keywords": ["shop.example"]},
        {"name": "exact-shop", "detector": "keyword", "keywords": ["Shop.Example"], "case_sensitive": True},
    )
    matcher = rules._text_matchers["status_text"]
    # Keyword patterns share a gate per flags; regex rules run one RE2 search each.
    assert [[rule.name for rule, _ in members] for gate, members in matcher.keyword_gates] == [
        ["short-links", "shop"], ["exact-shop"]]
    assert [gate is None for gate, _ in matcher.keyword_gates] == [False, True]
    assert [rule.name for rule, _ in matcher.regexes] == ["casino", "telegram", "casino-again", "shouting", "exact"]
    found = hits(rules, statuses=[
        status(1, "CASINO  bonus at t.me/spamchan and bit.ly/x"),
        status(2, "WIN BIG, free money, visit shop.example"),
        status(3, "nothing to see here"),
    ])
    assert sorted((hit.status_id, hit.rule, hit.matched_text) for hit in found) == [
        ("1", "casino", "CASINO  bonus"), ("1", "casino-again", "CASINO  bonus"), ("1", "short-links", "bit.ly"),
        ("1", "telegram", "t.me/spamchan"), ("2", "shop", "shop.example"), ("2", "shouting", "WIN BIG"),
    ]


def test_fields_read_by_the_same_rules_share_one_matcher(ruleset):
    rules = ruleset({"name": "everywhere", "detector": "regex", "pattern": r"\w+x"},
                    {"name": "bio-only", "detector": "keyword", "keywords": ["crypto"], "fields": ["note"]})
    matchers = rules._text_matchers
    assert matchers["status_text"] is matchers["display_name"] is matchers["spoiler_text"]
    assert matchers["note"] is not matchers["status_text"]


# -- posting_rate --


def test_posting_rate(ruleset):
    rules = ruleset({"name": "burst", "detector": "posting_rate", "max_statuses": 3, "window_seconds": 60})
    burst = [status(i, seconds_ago=i * 10) for i in range(4)] + [status(9, seconds_ago=5000)]
    assert sorted(hit.status_id for hit in hits(rules, statuses=burst)) == ["0", "1", "2", "3"]
    spread = [status(i, seconds_ago=i * 30) for i in range(4)]
    assert hits(rules, statuses=spread) == []


# -- duplicate_content --


def test_duplicate_content(ruleset):
    rules = ruleset({"name": "dupes", "detector": "duplicate_content", "min_duplicates": 3, "min_length": 5})
    same = [status(i, f"<p>Buy   my {'COURSE' if i else 'course'} today</p>") for i in range(3)]
    assert sorted(hit.status_id for hit in hits(rules, statuses=same + [status(7, "something else entirely")])) == ["0", "1", "2"]
    assert hits(rules, statuses=same[:2]) == []
    assert hits(rules, statuses=[status(i, "ok") for i in range(5)]) == []


# -- link_domain --


def test_link_domain_listed_domains_include_subdomains_and_cards(ruleset):
    rules = ruleset({"name": "shorteners", "detector": "link_domain", "domains": ["bit.ly"], "fields": ["status_text", "note"]})
    statuses = [
        status(1, '<p><a href="https://go.bit.ly/x">x</a></p>'),
        status(2, "", card={"url": "https://bit.ly/card"}),
        status(3, '<p><a href="https://notbit.ly/x">x</a></p>'),
    ]
    account = {"id": "1", "note": '<a href="http://www.bit.ly/bio">bio</a>'}
    assert sorted((hit.field, hit.status_id) for hit in hits(rules, account, statuses)) == [
        ("note", None),
        ("status_text", "1"),
        ("status_text", "2"),
    ]


def test_link_domain_too_many_links_to_one_domain(ruleset):
    rules = ruleset({"name": "one-domain", "detector": "link_domain", "max_links_to_one_domain": 2})
    linking = [status(i, f'<a href="https://shop.example/{i}">buy</a>', card={"url": f"https://shop.example/{i}"}) for i in range(3)]
    assert sorted(hit.status_id for hit in hits(rules, statuses=linking)) == ["0", "1", "2"]
    # The card repeats the status's own link: two statuses are two links, within the limit.
    assert hits(rules, statuses=linking[:2]) == []


def test_mentions_and_hashtags_are_not_link_spam(ruleset):
    rules = ruleset({"name": "one-domain", "detector": "link_domain", "max_links_to_one_domain": 1})
    tags = '<a href="https://home.example/tags/a" class="mention hashtag">#a</a> <a href="https://home.example/@b" class="u-url mention">@b</a>'
    assert hits(rules, statuses=[status(i, tags) for i in range(5)]) == []


# -- new_account_burst --


def test_new_account_burst(ruleset):
    rules = ruleset({"name": "new", "detector": "new_account_burst", "max_account_age_days": 2, "min_statuses": 10})
    young = {"id": "1", "created_at": (NOW - timedelta(days=1)).isoformat(), "statuses_count": 12}
    found = hits(rules, young)
    assert [(hit.field, hit.status_id) for hit in found] == [("statuses_count", None)]
    assert hits(rules, {**young, "statuses_count": 3}) == []
    assert hits(rules, {**young, "created_at": "2020-01-01T00:00:00.000Z"}) == []
    assert hits(rules, {"id": "1", "statuses_count": 500}) == []


# -- media --


def test_media_alt_text(ruleset):
    rules = ruleset({"name": "alt", "detector": "media_alt_text", "min_missing": 2})
    bare = [status(1, media_attachments=[{"type": "image", "description": None}, {"type": "video", "description": "  "}])]
    # Two attachments are missing alt text: enough, and one status is one piece of evidence.
    assert [(hit.field, hit.status_id) for hit in hits(rules, statuses=bare)] == [("media_description", "1")]
    # Only one image lacks alt text (audio is not checked by default): below min_missing.
    described = [status(1, media_attachments=[{"type": "image", "description": "a cat"}, {"type": "audio"}, {"type": "image"}])]
    assert hits(rules, statuses=described) == []


def test_media_mime_by_type_and_guessed_mime(ruleset):
    rules = ruleset({"name": "mime", "detector": "media_mime", "mime_types": ["application/*"], "media_types": ["unknown"]})
    bad = [
        status(1, media_attachments=[{"type": "unknown", "url": None, "remote_url": "https://remote.example/a"}]),
        status(2, media_attachments=[{"type": "image", "url": "https://files.example/original/a.exe?x=1"}]),
    ]
    assert sorted(hit.status_id for hit in hits(rules, statuses=bad)) == ["1", "2"]
    good = [status(3, media_attachments=[{"type": "image", "url": "https://files.example/a.png"}, {"type": "video"}])]
    assert hits(rules, statuses=good) == []


@pytest.mark.parametrize(
    "rule",
    [
        {"detector": "keyword", "keywords": ["scam"]},
        {"detector": "regex", "pattern": "scam"},
        {"detector": "posting_rate", "max_statuses": 1, "window_seconds": 60},
        {"detector": "duplicate_content", "min_duplicates": 2, "min_length": 1},
        {"detector": "link_domain", "domains": ["bit.ly"], "max_links_to_one_domain": 1, "fields": ["note", "fields", "status_text"]},
        {"detector": "new_account_burst", "max_account_age_days": 1, "min_statuses": 1},
        {"detector": "media_alt_text"},
        {"detector": "media_mime", "mime_types": ["*"], "media_types": ["unknown"]},
    ],
    ids=lambda rule: rule["detector"],
)
def test_missing_or_mistyped_fields_never_crash_or_match(ruleset, rule):
    rules = ruleset({"name": "r", **rule})
    odd_account = {"id": None, "note": None, "fields": None, "created_at": "not a date", "statuses_count": "many"}
    odd_statuses = [
        {},
        "not a status",
        {"id": 5, "content": None, "created_at": None, "media_attachments": None, "card": "x"},
        {"id": "6", "media_attachments": ["junk", {"type": None}], "card": {"url": None}},
    ]
    assert rules.evaluate({}, [], now=NOW).score == 0
    assert rules.evaluate(odd_account, odd_statuses, now=NOW).score == 0
