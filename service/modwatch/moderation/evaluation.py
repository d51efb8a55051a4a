"""`modwatch eval`: how well a rules file separates spam from benign accounts on a labelled corpus.

A corpus is JSONL, one account a line (corpus/generate.py writes the repository's):
`{"id", "label": "spam"|"benign", "family" (spam) or "kind" (benign), "lang", "split", "observed_at",
"account": Account, "statuses": [Status]}`. Every account is scored as the service scores it, at
its `observed_at`, with its posts looked up across the whole corpus for waves (an in-memory index:
every account is indexed first, then scored, as the service's follow-ups rescore earlier members
once a wave forms). Nothing is recorded, nothing is filed, no Mastodon or Redis is needed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from modwatch.moderation import waves
from modwatch.moderation.detectors import gather, timestamp, young_for_waves
from modwatch.moderation.engine import Analysis, RuleSet

SPLITS = ("all", "train", "holdout")


class CorpusError(ValueError):
    """The corpus cannot be read; the message names the line."""


@dataclass(frozen=True)
class Scored:
    record: dict[str, Any]
    analysis: Analysis
    reported: bool

    @property
    def spam(self) -> bool:
        return self.record["label"] == "spam"

    @property
    def group(self) -> str:
        return str(self.record.get("family") if self.spam else self.record.get("kind")) or "unlabelled"


def load_corpus(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise CorpusError(f"{path.name}: line {number}: not JSON: {exc}") from None
        if not isinstance(record, dict) or record.get("label") not in ("spam", "benign") or not isinstance(record.get("account"), dict):
            raise CorpusError(f"{path.name}: line {number}: needs label spam|benign and an account object")
        record.setdefault("statuses", [])
        record.setdefault("split", "train")
        records.append(record)
    if not records:
        raise CorpusError(f"{path.name}: no accounts")
    return records


def _observed_at(record: dict[str, Any]) -> datetime:
    return timestamp(record.get("observed_at")) or datetime.now(timezone.utc)


def score_corpus(records: list[dict[str, Any]], rules: RuleSet, threshold: float) -> list[Scored]:
    """Score every account; waves are looked up across the corpus under the first `wave` rule."""
    materials = [gather(record["account"], record["statuses"], rules.allowed_domains) for record in records]
    index = waves.MemoryWaves()
    wave_rule = rules.wave_rules[0] if rules.wave_rules else None

    def lookup(params: dict[str, Any], record: dict[str, Any], material, record_it: bool) -> waves.Observed:
        now = _observed_at(record)
        young = young_for_waves(material, now, params["max_account_age_days"])
        return waves.observe(index, str(record["account"].get("id")), material, now, params["min_accounts"],
                             params["window_seconds"], params["kinds"], rules.allowed_domains, record=record_it and young)

    if wave_rule is not None:
        for record, material in zip(records, materials):
            lookup(wave_rule.params, record, material, True)
    scored = []
    for record, material in zip(records, materials):
        matches = lookup(wave_rule.params, record, material, False).matches if wave_rule is not None else ()
        analysis = rules.evaluate(record["account"], record["statuses"], now=_observed_at(record), waves=matches,
                                  material=material)
        scored.append(Scored(record, analysis, bool(analysis.hits) and analysis.score >= threshold))
    return scored


def _prf(true_positive: int, false_positive: int, false_negative: int) -> tuple[float | None, float | None, float | None]:
    precision = true_positive / (true_positive + false_positive) if true_positive + false_positive else None
    recall = true_positive / (true_positive + false_negative) if true_positive + false_negative else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (0.0 if precision is not None and recall is not None else None)
    return precision, recall, f1


def in_split(items: Iterable[Scored], split: str) -> list[Scored]:
    return [item for item in items if split == "all" or item.record.get("split") == split]


def overall(items: list[Scored]) -> dict[str, Any]:
    tp = sum(item.reported and item.spam for item in items)
    fp = sum(item.reported and not item.spam for item in items)
    fn = sum(not item.reported and item.spam for item in items)
    precision, recall, f1 = _prf(tp, fp, fn)
    return {"accounts": len(items), "spam": sum(item.spam for item in items), "reported": tp + fp, "tp": tp, "fp": fp,
            "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def per_rule(items: list[Scored], rules: RuleSet) -> list[dict[str, Any]]:
    """Each rule as a classifier on its own: an account is flagged when the rule hits it."""
    spam_total = sum(item.spam for item in items)
    out = []
    for rule in rules.rules:
        if not rule.enabled:
            continue
        hit = [item for item in items if rule.name in item.analysis.rule_names]
        on_spam = sum(item.spam for item in hit)
        precision, recall, f1 = _prf(on_spam, len(hit) - on_spam, spam_total - on_spam)
        out.append({"rule": rule.name, "weight": rule.weight, "hits": len(hit), "on_spam": on_spam,
                    "on_benign": len(hit) - on_spam, "precision": precision, "recall": recall, "f1": f1})
    return out


def per_group(items: list[Scored], spam: bool) -> list[dict[str, Any]]:
    groups: dict[str, list[Scored]] = defaultdict(list)
    for item in items:
        if item.spam == spam:
            groups[item.group].append(item)
    return [{"group": name, "accounts": len(members), "reported": sum(item.reported for item in members),
             "holdout": sum(item.record.get("split") == "holdout" for item in members),
             "holdout_reported": sum(item.reported and item.record.get("split") == "holdout" for item in members),
             "langs": sorted({str(item.record.get("lang")) for item in members})}
            for name, members in sorted(groups.items())]


def summary(scored: list[Scored], rules: RuleSet, threshold: float) -> dict[str, Any]:
    return {
        "threshold": threshold,
        "rules_hash": rules.hash,
        "overall": {split: overall(in_split(scored, split)) for split in SPLITS},
        "rules": {split: per_rule(in_split(scored, split), rules) for split in SPLITS},
        "families": per_group(scored, spam=True),
        "kinds": per_group(scored, spam=False),
        "languages": sorted({str(item.record.get("lang")) for item in scored}),
    }


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render(result: dict[str, Any], corpus: str, rules_source: str, split: str = "all") -> str:
    """Markdown tables: readable in a terminal, pasted as is into docs/detection.md."""
    lines = [f"corpus `{corpus}`, rules `{rules_source}` (hash {result['rules_hash'][:12]}), threshold {result['threshold']:g}, "
             f"{len(result['languages'])} languages", "",
             "| split | accounts | spam | reported | false positives | missed | precision | recall | F1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in result["overall"].items():
        lines.append(f"| {name} | {row['accounts']} | {row['spam']} | {row['reported']} | {row['fp']} | {row['fn']} | "
                     f"{_num(row['precision'])} | {_num(row['recall'])} | {_num(row['f1'])} |")
    lines += ["", f"Per rule ({split} split; each rule alone as a classifier: flagged = the rule hit):", "",
              "| rule | weight | hits | on spam | on benign | precision | recall | F1 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["rules"][split]:
        lines.append(f"| {row['rule']} | {row['weight']:g} | {row['hits']} | {row['on_spam']} | {row['on_benign']} | "
                     f"{_num(row['precision'])} | {_num(row['recall'])} | {_num(row['f1'])} |")
    lines += ["", "Per spam family (recall: share of the family's accounts reported):", "",
              "| family | languages | accounts | reported | recall | holdout recall |", "|---|---|---:|---:|---:|---:|"]
    for row in result["families"]:
        held = f"{row['holdout_reported']}/{row['holdout']}" if row["holdout"] else "-"
        lines.append(f"| {row['group']} | {', '.join(row['langs'])} | {row['accounts']} | {row['reported']} | "
                     f"{_num(row['reported'] / row['accounts'])} | {held} |")
    lines += ["", "Per benign kind (false positives: accounts reported):", "",
              "| kind | languages | accounts | false positives | holdout false positives |", "|---|---|---:|---:|---:|"]
    for row in result["kinds"]:
        held = f"{row['holdout_reported']}/{row['holdout']}" if row["holdout"] else "-"
        lines.append(f"| {row['group']} | {', '.join(row['langs'])} | {row['accounts']} | {row['reported']} | {held} |")
    return "\n".join(lines)


def misclassified(scored: list[Scored]) -> list[str]:
    """One line per wrong decision, for tuning: label, group, score and the rules that hit."""
    return [f"{'missed' if item.spam else 'false positive'} {item.group} {item.record['account'].get('acct')} "
            f"score {item.analysis.score:g}: {', '.join(item.analysis.rule_names) or 'no rule'}"
            for item in scored if item.reported != item.spam]
