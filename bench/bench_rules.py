"""5. Rules engine: statuses per second with 100 text rules, against a naive loop.

The corpus is the simulator's seeded population (accounts with up to 40 recent statuses, spam
and ordinary alike) rendered as the API's JSON. The rule set is generated: 80 keyword rules of
8 keywords (a quarter of them phrases, a few with punctuation, like `bit.ly`) and 20 regex rules,
each reading every text field. The naive baseline (written here, not in the service) compiles one
regex per rule, keywords as one alternation, and runs every rule's regex on every field of every
account and status. Both start from the same extracted text (`detectors.gather`), so the
difference is the matching alone.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from pathlib import Path

import yaml

from common import Row
from modwatch.moderation.detectors import _keyword_pattern, gather
from modwatch.moderation.engine import load_rules
from modwatch.moderation.patterns import compile_pattern
from modwatch.moderation.schema import TEXT_FIELDS, Rule
from modwatch.simulator import entities
from modwatch.simulator.state import Config, SimState

RULES = 100
KEYWORD_RULES = 80
ACCOUNTS = 300
TARGET = 5.0
REGEXES = (
    r"\b(?:free|cheap)\s+followers?\b", r"https?://[a-z0-9.-]+\.example/\S*", r"\b\d{3,}\s?%\s+(?:profit|returns?)\b",
    r"\bwin\s+(?:an?\s+)?i(?:phone|pad)\b", r"\bt\.me/\w+", r"\b(?:dm|message)\s+me\s+(?:now|today)\b",
    r"\b[A-Z]{5,}!{2,}", r"\bcasino\s+bonus\b", r"\blimited\s+(?:time\s+)?offer\b", r"\bclick\s+(?:here|the\s+link)\b",
)


def ruleset_yaml(seed: int = 7) -> str:
    rng = random.Random(seed)
    vocabulary = [f"{rng.choice('bcdfghklmnprstvz')}{rng.choice('aeiou')}{rng.choice('lmnrst')}{rng.choice('aeiou')}"
                  f"{rng.choice('kmnprst')}{n}" for n in range(2000)]
    spam = ["crypto giveaway", "free followers", "casino bonus", "limited offer", "cheap deals", "guaranteed returns",
            "bit.ly", "t.co", "double your bitcoin", "seed phrase"]
    rules = []
    for index in range(KEYWORD_RULES):
        keywords = rng.sample(vocabulary, 6) + [f"{rng.choice(vocabulary)} {rng.choice(vocabulary)}", spam[index % len(spam)]]
        rules.append({"name": f"keywords-{index}", "detector": "keyword", "keywords": keywords, "weight": 1,
                      "category": "spam"})
    for index in range(RULES - KEYWORD_RULES):
        rules.append({"name": f"regex-{index}", "detector": "regex", "pattern": REGEXES[index % len(REGEXES)],
                      "flags": ["ignorecase"], "weight": 1, "category": "spam"})
    return yaml.safe_dump({"version": 1, "report_threshold": 10, "rules": rules})


def corpus(accounts: int = ACCOUNTS) -> list[tuple[dict, list[dict]]]:
    state = SimState(Config(seed=3, accounts=accounts))
    return [(entities.account(state, record), [entities.status(state, s) for s in state.statuses_of(record.id)][:40])
            for record in state.accounts.values()]


class NaiveMatcher:
    """Every rule's regex on every field it reads, one search per rule, field and text."""

    def __init__(self, rules: list[Rule]) -> None:
        self.compiled = []
        for rule in rules:
            if rule.detector == "regex":
                pattern = compile_pattern(rule.params["pattern"], rule.params["flags"])
            else:
                alternatives = "|".join(_keyword_pattern(k, rule.params["whole_word"]) for k in rule.params["keywords"])
                pattern = re.compile(alternatives, 0 if rule.params["case_sensitive"] else re.IGNORECASE)
            self.compiled.append((rule, pattern, rule.fields or TEXT_FIELDS))

    def evaluate(self, account: dict, statuses: list[dict]) -> set[tuple[str, str | None]]:
        material = gather(account, statuses)
        hits = set()
        for rule, pattern, fields in self.compiled:
            for field in fields:
                for snippet in material.texts.get(field, ()):
                    if pattern.search(snippet.text):
                        hits.add((rule.name, snippet.status_id))
        return hits


def timed(evaluate, items) -> tuple[float, list]:
    started = time.perf_counter()
    results = [evaluate(account, statuses) for account, statuses in items]
    return time.perf_counter() - started, results


def run(accounts: int = ACCOUNTS) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(ruleset_yaml())
        ruleset = load_rules(path)
    assert len(ruleset.rules) == RULES
    naive = NaiveMatcher(ruleset.rules)
    items = corpus(accounts)
    statuses = sum(len(s) for _, s in items)
    timed(ruleset.evaluate, items[:20]), timed(naive.evaluate, items[:20])  # warm
    # Alternating, best of five each: the machine's speed drifts, and both should meet it alike.
    engine_runs, naive_runs = [], []
    for _ in range(5):
        engine_runs.append(timed(ruleset.evaluate, items))
        naive_runs.append(timed(naive.evaluate, items))
    engine_seconds, analyses = min(engine_runs, key=lambda r: r[0])
    naive_seconds, naive_hits = min(naive_runs, key=lambda r: r[0])
    # Both must find the same rules hitting the same statuses, or the comparison means nothing.
    engine_hits = [{(hit.rule, hit.status_id) for hit in analysis.hits} for analysis in analyses]
    if engine_hits != naive_hits:
        raise RuntimeError("the engine and the naive loop disagree on the hits")
    ratio = naive_seconds / engine_seconds
    hit_accounts = sum(1 for hits in engine_hits if hits)
    return [Row(
        f"5. rules engine, {RULES} rules, {len(items)} accounts / {statuses} statuses",
        f"{statuses / engine_seconds:,.0f} statuses/s", f"{statuses / naive_seconds:,.0f} statuses/s (naive loop)",
        ratio, f">= {TARGET}x", ratio >= TARGET,
        [f"rules: {hit_accounts} of {len(items)} accounts hit at least one rule; same hits from both"],
    )]
