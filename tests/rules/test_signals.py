"""Account and behaviour signals, `applies_to`, negative weights, domain lists and wave fingerprints."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import redis

from isolation import claimed_redis_db, redis_db_url
from modwatch.moderation import analysis, waves
from modwatch.moderation.detectors import Post, gather, random_looking
from modwatch.moderation.domains import DomainListError, covered, parse_domain_list
from modwatch.moderation.engine import RulesCache, RulesError
from modwatch.redis_keys import WAVE_KEY_PREFIX

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
MASTODON_CSV = """#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate
spam.example,suspend,false,false,Spam farm,false
*.casino.example,silence,true,false,,false
"""


def account(**overrides):
    base = {"id": "7", "username": "xk3j9qzw", "acct": "xk3j9qzw@mastodon.social", "display_name": "", "note": "",
            "avatar": "https://mastodon.social/avatars/original/missing.png", "fields": [], "followers_count": 0,
            "following_count": 1, "statuses_count": 1, "created_at": (NOW - timedelta(hours=3)).isoformat()}
    return {**base, **overrides}


def mention(name: str, host: str = "chaos.social") -> str:
    return (f'<span class="h-card" translate="no"><a href="https://{host}/@{name}" class="u-url mention">'
            f"@<span>{name}</span></a></span>")


def post(content: str, mentions=(), reply_to=None, media=(), status_id="100"):
    return {"id": status_id, "created_at": (NOW - timedelta(minutes=5)).isoformat(), "content": f"<p>{content}</p>",
            "mentions": [{"id": str(index), "acct": f"{name}@chaos.social", "username": name} for index, name in enumerate(mentions)],
            "in_reply_to_account_id": reply_to, "media_attachments": list(media)}


@pytest.mark.parametrize("name, expected", [("xk3j9qzw", True), ("maria847261", True), ("bcdfghkl", True),
                                            ("emma", False), ("lena_dev", False), ("sophie42", False), ("mastodonpy_test", False)])
def test_random_looking_usernames(name, expected):
    assert random_looking(name) is expected


def test_new_account_and_bare_profile(ruleset):
    rules = ruleset({"name": "new", "detector": "new_account", "max_account_age_days": 1, "max_followers": 5, "weight": 3},
                    {"name": "bare", "detector": "profile", "min_signals": 4, "weight": 2})
    assert rules.evaluate(account(), [], now=NOW).rule_names == ["new", "bare"]
    assert rules.evaluate(account(followers_count=6), [], now=NOW).rule_names == ["bare"]
    grown_up = account(created_at=(NOW - timedelta(days=3)).isoformat(), username="lena", display_name="Lena",
                       avatar="https://x.example/avatars/1.png", note="<p>hello</p>")
    assert rules.evaluate(grown_up, [], now=NOW).rule_names == []


def test_mentions_outside_a_conversation_count_replies_do_not(ruleset):
    rules = ruleset({"name": "mentions", "detector": "mentions", "min_mentions": 2, "weight": 3},
                    {"name": "bare", "detector": "mentions", "min_mentions": 1, "max_text_chars": 10, "weight": 3})
    spam = post(f"{mention('ana')} {mention('bo')} hi", mentions=["ana", "bo"])
    assert rules.evaluate(account(), [spam], now=NOW).rule_names == ["mentions", "bare"]
    reply = post(f"{mention('ana')} {mention('bo')} hi", mentions=["ana", "bo"], reply_to="0")
    assert rules.evaluate(account(), [reply], now=NOW).rule_names == []
    talk = post(f"{mention('ana')} {mention('bo')} have you seen the new release notes?", mentions=["ana", "bo"])
    assert rules.evaluate(account(), [talk], now=NOW).rule_names == ["mentions"]


def test_applies_to_restricts_a_rule_to_young_accounts(ruleset):
    rules = ruleset({"name": "wallet", "detector": "regex", "pattern": r"\b0x[a-fA-F0-9]{40}\b", "weight": 3,
                     "applies_to": {"max_account_age_days": 30}})
    address = post("Donations: 0x" + "ab" * 20)
    assert rules.evaluate(account(), [address], now=NOW).rule_names == ["wallet"]
    old = account(created_at=(NOW - timedelta(days=400)).isoformat())
    assert rules.evaluate(old, [address], now=NOW).rule_names == []
    with pytest.raises(RulesError, match=r"field 'applies_to': 'max_age' is not one of"):
        ruleset({"name": "bad", "detector": "regex", "pattern": "x", "applies_to": {"max_age": 3}})


def test_negative_weights_count_against_and_never_set_the_category(ruleset):
    rules = ruleset({"name": "scam", "detector": "keyword", "keywords": ["airdrop"], "weight": 8},
                    {"name": "warning", "detector": "keyword", "keywords": ["beware"], "weight": -6, "category": "other"})
    analysis = rules.evaluate(account(), [post("Beware of the fake airdrop going around")], now=NOW)
    assert analysis.score == 2 and analysis.category == "spam"
    with pytest.raises(RulesError, match="must be a number other than 0"):
        ruleset({"name": "zero", "detector": "keyword", "keywords": ["x"], "weight": 0})


def test_domain_lists_plain_and_mastodon_csv():
    assert parse_domain_list("# popular\nYouTube.com\n\nwww.github.com\n", "a.txt") == {"youtube.com", "github.com"}
    assert parse_domain_list(MASTODON_CSV, "blocks.csv") == {"spam.example", "casino.example"}
    assert covered("cdn.casino.example", frozenset({"casino.example"})) and not covered("example", frozenset({"example"}))
    with pytest.raises(DomainListError, match="bad.txt: line 2: 'not a domain' is not a domain name"):
        parse_domain_list("ok.example\nnot a domain\n", "bad.txt")


def test_block_and_allow_lists_apply_to_links_mentions_and_account_domain_and_reload(write_rules, tmp_path):
    (tmp_path / "blocks.csv").write_text(MASTODON_CSV)
    (tmp_path / "popular.txt").write_text("youtube.com\n")
    path = write_rules("""
        version: 1
        allowed_domains_files: [popular.txt]
        rules:
          - name: blocked
            detector: link_domain
            fields: [status_text, mentions, account]
            domains_files: [blocks.csv]
            weight: 5
            category: spam
          - name: many-links
            detector: link_domain
            max_links_to_one_domain: 1
            weight: 1
            category: spam
    """)
    cache = RulesCache(path)
    rules = cache.get()
    linked = post('<a href="https://win.casino.example/x">win</a> <a href="https://youtube.com/a">a</a> '
                  '<a href="https://youtube.com/b">b</a>')
    hits = rules.evaluate(account(), [linked], now=NOW).hits
    assert [(hit.rule, hit.field) for hit in hits] == [("blocked", "status_text")]  # youtube is allowed: no many-links
    mentioned = post(f"{mention('x', 'spam.example')} hello", mentions=["x"])
    mentioned["mentions"][0]["acct"] = "x@spam.example"
    assert rules.evaluate(account(), [mentioned], now=NOW).hits[0].field == "mentions"
    assert rules.evaluate(account(acct="y@spam.example"), [], now=NOW).hits[0].field == "account"
    time.sleep(0.01)
    (tmp_path / "blocks.csv").write_text("other.example\n")
    assert cache.get().hash != rules.hash
    assert cache.get().evaluate(account(), [linked], now=NOW).rule_names == []


def test_text_fingerprints_ignore_mentions_links_paths_and_numbers():
    one = gather(account(), [post(f"{mention('ana')} {mention('bo')} Join our server now "
                                  '<a href="https://discord.gg/abcd1234">discord.gg/abcd1234</a> 100 free')]).posts[0]
    two = gather(account(), [post(f"{mention('cy')} join our server NOW "
                                  '<a href="https://discord.gg/abcd1234">discord.gg/abcd1234</a> 250 free')]).posts[0]
    other = gather(account(), [post("Our community garden needs volunteers this weekend, bring gloves")]).posts[0]

    def keys(gathered: Post) -> set[tuple[str, str]]:
        return {(fp.kind, fp.key) for fp in waves.fingerprints(gathered)}

    assert {key for key in keys(one) if key[0] == "text"} == {key for key in keys(two) if key[0] == "text"}
    assert ("invite", "discord.gg/abcd1234") in keys(one)
    assert not {key for key in keys(one) if key[0] == "text"} & keys(other)
    assert waves.invite_of("https://t.me/some_channel") is None and waves.invite_of("https://t.me/+AbCdEf12") == "t.me/+AbCdEf12"


def wave_rules(ruleset):
    return ruleset({"name": "wave", "detector": "wave", "min_accounts": 3, "window_seconds": 3600, "max_account_age_days": 7,
                    "weight": 6})


def run_wave(index, rules, members: int, now=NOW):
    observed = []
    for number in range(members):
        material = gather(account(id=str(number + 1)), [post(f"{mention('x')} Join the raid server today "
                                                              '<a href="https://discord.gg/raid123">discord.gg/raid123</a>',
                                                              status_id=str(100 + number))])
        params = rules.wave_rules[0].params
        observed.append(waves.observe(index, str(number + 1), material, now, params["min_accounts"], params["window_seconds"],
                                      params["kinds"]))
    return observed


def test_a_wave_forms_at_the_third_young_account_and_names_the_earlier_members(ruleset):
    rules = wave_rules(ruleset)
    first, second, third, fourth = run_wave(waves.MemoryWaves(), rules, 4)
    assert first.matches == second.matches == ()
    assert {match.kind for match in third.matches} >= {"text", "invite"} and set(third.earlier_members) == {"1", "2"}
    assert fourth.earlier_members == () and max(match.accounts for match in fourth.matches) == 4
    material = gather(account(id="4"), [])
    analysis = rules.evaluate(account(id="4"), [], now=NOW, waves=fourth.matches, material=material)
    assert analysis.rule_names == ["wave"] and "4 accounts" in analysis.hits[0].matched_text


REDIS_URL = redis_db_url(13)


def test_the_redis_index_matches_the_memory_one_and_stays_bounded(ruleset):
    connection = claimed_redis_db(REDIS_URL)
    try:
        rules = wave_rules(ruleset)
        observed = run_wave(waves.RedisWaves(connection), rules, 4)
        assert [len(o.matches) > 0 for o in observed] == [False, False, True, True]
        assert set(observed[2].earlier_members) == {"1", "2"}
        keys = connection.keys(WAVE_KEY_PREFIX + "*")
        assert keys and all(0 < connection.ttl(key) <= 3600 for key in keys)
        assert waves.mark_active(connection, observed[3].active_keys, NOW.timestamp(), 3600) == len(observed[3].active_keys)
        # An hour later the window has moved on: the same posts make no wave.
        later = run_wave(waves.RedisWaves(connection), rules, 1, now=NOW + timedelta(hours=2))
        assert later[0].matches == ()
    finally:
        connection.flushdb()


class CountingRedis(redis.Redis):
    """A real Redis client that keeps the commands it sends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[tuple] = []

    def execute_command(self, *args, **options):
        self.sent.append(args)
        return super().execute_command(*args, **options)


def mixed_observations(rules) -> list[tuple[str, object, bool]]:
    """Nine accounts in the order a batch would score them: the third to post the wave text and
    invite (4, with the text twice) completes the wave and names 1 and 3; 5 is only looked up
    (record False: an old account); 6 to 8 share an unpopular link domain; 9 joins the wave later."""
    wave_text = (f"{mention('x')} Join the raid server today "
                 '<a href="https://discord.gg/raid123">discord.gg/raid123</a>')
    texts = {
        "1": [wave_text], "2": ["Our community garden needs volunteers this weekend, bring gloves"],
        "3": [wave_text], "4": [wave_text, wave_text.replace("today", "tonight")],
        "5": [wave_text], "6": ['Cheap pills <a href="https://pills.example/a">pills.example/a</a> order today'],
        "7": ['More cheap pills <a href="https://pills.example/b">pills.example/b</a> while they last'],
        "8": ['Still cheap pills <a href="https://pills.example/c">pills.example/c</a> for everyone here'],
        "9": [wave_text],
    }
    out = []
    for account_id, posts in texts.items():
        statuses = [post(text, status_id=f"{account_id}0{number}") for number, text in enumerate(posts)]
        out.append((account_id, gather(account(id=account_id), statuses, rules.allowed_domains), account_id != "5"))
    return out


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_batch_observation_sees_exactly_what_the_same_observations_one_by_one_see(ruleset, kind):
    rules = wave_rules(ruleset)
    params = rules.wave_rules[0].params
    connection = CountingRedis.from_url(REDIS_URL)
    connection.flushdb()

    def index():
        connection.flushdb()
        return waves.MemoryWaves() if kind == "memory" else waves.RedisWaves(connection)

    try:
        batch = mixed_observations(rules)
        one_by_one = index()
        alone = [waves.observe(one_by_one, account_id, material, NOW, params["min_accounts"], params["window_seconds"],
                               params["kinds"], rules.allowed_domains, record=record)
                 for account_id, material, record in batch]
        state_alone = {key: connection.zrange(key, 0, -1, withscores=True) for key in connection.keys("*")}
        together = waves.observe_many(index(), batch, NOW, params["min_accounts"], params["window_seconds"],
                                      params["kinds"], rules.allowed_domains)
        assert together == alone
        # A sequence that tells them apart: the wave completes mid-batch, at account 4, which names
        # 1 and 3 and not the later 9 (reading the members after the whole batch's adds would).
        assert [bool(o.matches) for o in alone] == [False, False, False, True, True, False, False, True, True]
        assert [set(o.earlier_members) for o in alone] == [set(), set(), set(), {"1", "3"}, set(), set(), set(),
                                                           {"6", "7"}, set()]
        assert {match.kind for match in alone[7].matches} == {"link_domain"}
        if kind == "redis":
            assert {key: connection.zrange(key, 0, -1, withscores=True) for key in connection.keys("*")} == state_alone
    finally:
        connection.flushdb()


def test_the_redis_index_observes_a_batch_in_one_round_trip_per_chunk_of_whole_observations(ruleset, monkeypatch):
    rules = wave_rules(ruleset)
    params = rules.wave_rules[0].params
    connection = CountingRedis.from_url(REDIS_URL)
    index = waves.RedisWaves(connection)
    batch = mixed_observations(rules) * 22  # 198 observations of 0 to 9 keys
    try:
        waves.observe_many(index, batch[:1], NOW, params["min_accounts"], params["window_seconds"], params["kinds"])

        def observe(max_keys: int) -> tuple[list[waves.Observed], list[int]]:
            """What the batch observes on an empty index, and the number of keys of each command sent."""
            monkeypatch.setattr(waves, "SCRIPT_MAX_KEYS", max_keys)
            connection.flushdb()
            connection.sent.clear()  # the script is loaded by now: every call is one EVALSHA
            observed = waves.observe_many(index, batch, NOW, params["min_accounts"], params["window_seconds"],
                                          params["kinds"], rules.allowed_domains)
            assert {command[0] for command in connection.sent} == {"EVALSHA"}
            return observed, [int(command[2]) for command in connection.sent]

        whole, sizes = observe(100_000)
        assert len(whole) == 198 and len(sizes) == 1 and sizes[0] > 500
        chunked, chunk_sizes = observe(20)
        assert chunked == whole and sum(chunk_sizes) == sizes[0]
        assert max(chunk_sizes) <= 20 and len(chunk_sizes) < 2 * sizes[0] / 20 + 1  # filled, not one per observation
        assert waves.observe_many(index, [], NOW, 3, 3600, params["kinds"]) == []
    finally:
        connection.flushdb()


class CountingWaves(waves.MemoryWaves):
    """The memory index, remembering which accounts were looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[str] = []

    def observe_many(self, observations, at, window):
        self.looked_up += [observation.account_id for observation in observations]
        return super().observe_many(observations, at, window)


def test_only_accounts_young_enough_for_some_wave_rule_are_fingerprinted_and_looked_up(ruleset):
    """The wave detector finds nothing for an account older than its rule's max_account_age_days
    (detectors.wave), so analysis.observe_waves skips such accounts; the oldest age any enabled wave
    rule accepts decides, and an unknown age counts as young, as in the detector."""
    raid = post(f"{mention('x')} Join the raid server today "
                '<a href="https://discord.gg/raid123">discord.gg/raid123</a>')
    ages = {"1": timedelta(hours=3), "2": timedelta(days=30), "3": timedelta(days=400), "4": None}

    def looked_up(rules) -> list[str]:
        index = CountingWaves()
        accounts = [account(id=account_id, created_at=(NOW - age).isoformat() if age else None)
                    for account_id, age in ages.items()]
        materials = [gather(acct, [raid], rules.allowed_domains) for acct in accounts]
        observed = analysis.observe_waves(rules, accounts, materials, NOW, index, record=True)
        assert all(seen is waves.NOTHING for acct, seen in zip(accounts, observed) if acct["id"] not in index.looked_up)
        return index.looked_up

    week = wave_rules(ruleset)
    assert looked_up(week) == ["1", "4"]
    assert looked_up(ruleset({"name": "wave", "detector": "wave", "max_account_age_days": 7, "weight": 6},
                             {"name": "older-wave", "detector": "wave", "max_account_age_days": 60, "weight": 2})) \
        == ["1", "2", "4"]
    # Skipping them changes no decision: an old account posting into a live wave, looked up in full,
    # shares its fingerprints and still gets no wave hit.
    index = waves.MemoryWaves()
    run_wave(index, week, 3)
    params = week.wave_rules[0].params
    for account_id in ("2", "3"):
        old = account(id=account_id, created_at=(NOW - ages[account_id]).isoformat())
        material = gather(old, [raid], week.allowed_domains)
        full = waves.observe(index, account_id, material, NOW, params["min_accounts"], params["window_seconds"],
                             params["kinds"], record=False)
        assert full.matches
        assert week.evaluate(old, [raid], now=NOW, waves=full.matches, material=material).rule_names == []
