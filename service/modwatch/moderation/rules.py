"""The rules file: its schema, validation and the Rule it produces.

Validation is hand written so that every error is one line naming the file, the rule (name and
1-based position) and the field, e.g.
`rules.yaml: rule 'crypto-scam' (#3): field 'weight': must be a number > 0`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from re import _constants as sre_constants  # the parse tree is the only way to see nesting
from re import _parser as sre_parser
from typing import Any, Callable, Iterator

import regex
import yaml

from modwatch.moderation.domains import DomainListError, read_domain_list

FILE_VERSION = 1
TEXT_FIELDS = ("username", "display_name", "note", "fields", "status_text", "spoiler_text", "media_description")
# `mentions`: the hosts of mentioned accounts; `account`: the account's own domain.
LINK_FIELDS = ("note", "fields", "status_text", "mentions", "account")
CATEGORIES = ("spam", "legal", "violation", "other")
MEDIA_TYPES = ("image", "gifv", "video", "audio", "unknown")
# What `applies_to` may limit: a rule then counts only for accounts within every limit given.
ACCOUNT_LIMITS = ("max_account_age_days", "max_followers", "max_statuses")
PROFILE_SIGNALS = ("default_avatar", "empty_note", "no_display_name", "random_username", "no_fields")
WAVE_KINDS = ("text", "link_domain", "invite", "media")
REGEX_FLAGS = {
    "ignorecase": re.IGNORECASE,
    "multiline": re.MULTILINE,
    "dotall": re.DOTALL,
    "ascii": re.ASCII,
    "verbose": re.VERBOSE,
}
REQUIRED = object()
# The load-time probe: each compiled pattern is searched in a few hostile texts this long, and a
# search that exceeds the timeout (CPU seconds, measured by the `regex` module) rejects the rule.
PROBE_LENGTH = 2000
PROBE_TIMEOUT_SECONDS = 0.1
MAX_PROBES = 16


class RulesError(ValueError):
    """The rules file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Rule:
    name: str
    detector: str
    weight: float
    category: str
    description: str = ""
    fields: tuple[str, ...] = ()
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    # Ids of the instance's own rules (GET /api/v1/instance/rules) a `violation` report names.
    instance_rule_ids: tuple[str, ...] = ()
    # Account limits (ACCOUNT_LIMITS) the rule is restricted to; empty: every account.
    applies_to: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "detector": self.detector,
            "weight": self.weight,
            "category": self.category,
            "enabled": self.enabled,
        }
        if self.fields:
            out["fields"] = list(self.fields)
        if self.instance_rule_ids:
            out["instance_rule_ids"] = list(self.instance_rule_ids)
        if self.applies_to:
            out["applies_to"] = dict(self.applies_to)
        out.update({key: list(value) if isinstance(value, tuple) else value for key, value in self.params.items()})
        return out


# -- value checks: each returns the normalised value or raises ValueError("must ...") --


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def _weight(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0:
        raise ValueError("must be a number other than 0 (negative: evidence against spam)")
    return value


def _applies_to(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise ValueError(f"must be a mapping with any of {', '.join(ACCOUNT_LIMITS)}")
    out = {}
    for key, limit in value.items():
        if key not in ACCOUNT_LIMITS:
            raise ValueError(f"{key!r} is not one of {', '.join(ACCOUNT_LIMITS)}")
        out[key] = _positive_number(limit) if key == "max_account_age_days" else _int_at_least(0)(limit)
    return out


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError("must be a number > 0")
    return value


def _int_at_least(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"must be an integer >= {minimum}")
        return value

    return check


def _instance_rule_ids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of instance rule ids")
    ids = tuple(str(item) for item in value)
    if not all(item.isdigit() for item in ids):
        raise ValueError("must contain only rule ids (digits) from GET /api/v1/instance/rules")
    return ids


def _string_list(value: Any, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"must contain only non-empty strings (got {item!r})")
        if allowed is not None and item not in allowed:
            raise ValueError(f"{item!r} is not one of {', '.join(allowed)}")
    return tuple(dict.fromkeys(item.strip() for item in value))


def _choice(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return check


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
    return lambda value: _string_list(value, allowed)


def _domains(value: Any) -> tuple[str, ...]:
    return tuple(domain.lower().removeprefix("www.") for domain in _string_list(value))


def _flags(value: Any) -> tuple[str, ...]:
    return _string_list(value, tuple(REGEX_FLAGS))


def regex_flags(names: tuple[str, ...]) -> re.RegexFlag:
    flags = re.RegexFlag(0)
    for name in names:
        flags |= REGEX_FLAGS[name]
    return flags


def compile_pattern(pattern: str, flag_names: tuple[str, ...]) -> regex.Pattern[str]:
    """A regex rule's pattern as the engine runs it: with the `regex` module, whose searches take a timeout.

    Flags are looked up by name: `regex.ASCII` and `re.ASCII` have different values.
    """
    flags = 0
    for name in flag_names:
        flags |= getattr(regex, REGEX_FLAGS[name].name)
    return regex.compile(pattern, flags)


# -- the regex guard --

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}
_BACKREFERENCES = {sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS}


def _backtracking_risk(items: Any, inside_repeat: bool) -> str | None:
    """Why this parsed (sub)pattern can backtrack exponentially, or None.

    Deliberately conservative: a variable quantifier inside another repeated group is refused
    even when a human can see it is safe (`(?:a+b)+`); such patterns can always be rewritten.
    """
    for op, arg in items:
        if op in _BACKREFERENCES:
            return "backreferences are not allowed"
        if op in _REPEATS:
            low, high, body = arg
            if inside_repeat and low != high:
                return "nested quantifiers are not allowed (catastrophic backtracking)"
            reason = _backtracking_risk(body, inside_repeat or high > 1)
        elif op is sre_constants.SUBPATTERN:
            reason = _backtracking_risk(arg[3], inside_repeat)
        elif op is sre_constants.BRANCH:
            reason = next(filter(None, (_backtracking_risk(branch, inside_repeat) for branch in arg[1])), None)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            reason = _backtracking_risk(arg[1], inside_repeat)
        elif op is sre_constants.ATOMIC_GROUP:
            reason = _backtracking_risk(arg, inside_repeat)
        else:
            reason = None
        if reason:
            return reason
    return None


# One character each category or set can stand for, to build probe texts from the parse tree.
_CATEGORY_SAMPLES = {
    sre_constants.CATEGORY_DIGIT: "1",
    sre_constants.CATEGORY_NOT_DIGIT: "a",
    sre_constants.CATEGORY_SPACE: " ",
    sre_constants.CATEGORY_NOT_SPACE: "a",
    sre_constants.CATEGORY_WORD: "a",
    sre_constants.CATEGORY_NOT_WORD: " ",
    sre_constants.CATEGORY_LINEBREAK: "\n",
    sre_constants.CATEGORY_NOT_LINEBREAK: "a",
}


def _sample_char(op: Any, arg: Any) -> str:
    if op is sre_constants.LITERAL:
        return chr(arg)
    if op is sre_constants.NOT_LITERAL:
        return "a" if arg != ord("a") else "b"
    if op is sre_constants.RANGE:
        return chr(arg[0])
    if op is sre_constants.CATEGORY:
        return _CATEGORY_SAMPLES.get(arg, "a")
    if op is sre_constants.IN:
        if arg and arg[0][0] is sre_constants.NEGATE:
            return "\x01"  # outside almost every negated set: [^"], [^\s], [^a-z]
        return next((_sample_char(*item) for item in arg), "a")
    return "a"  # ANY and anything rarer


def _sample(items: Any) -> str:
    """A short text the parsed (sub)pattern matches, or nearly: quantified parts appear their minimum number of times."""
    parts = []
    for op, arg in items:
        if op in _REPEATS:
            low, _, body = arg
            parts.append(_sample(body) * low)
        elif op is sre_constants.SUBPATTERN:
            parts.append(_sample(arg[3]))
        elif op is sre_constants.ATOMIC_GROUP:
            parts.append(_sample(arg))
        elif op is sre_constants.BRANCH:
            parts.append(_sample(arg[1][0]))
        elif op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            continue
        else:
            parts.append(_sample_char(op, arg))
    return "".join(parts)


def _pumps(items: Any, prefix: str) -> Iterator[tuple[str, str]]:
    """(text leading up to a quantifier, what that quantifier repeats) for every unbounded-ish quantifier."""
    for index, (op, arg) in enumerate(items):
        before = prefix + _sample(items[:index])
        if op in _REPEATS:
            _, high, body = arg
            pump = _sample(body) or "a"
            if high > 1:
                yield before, pump
            yield from _pumps(body, before)
        elif op is sre_constants.SUBPATTERN:
            yield from _pumps(arg[3], before)
        elif op is sre_constants.ATOMIC_GROUP:
            yield from _pumps(arg, before)
        elif op is sre_constants.BRANCH:
            for branch in arg[1]:
                yield from _pumps(branch, before)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            yield from _pumps(arg[1], before)


def probe_texts(parsed: Any) -> list[str]:
    """Texts that make a backtracking pattern show itself: the lead-up to each quantifier, then what it
    repeats pumped to PROBE_LENGTH characters, then a character nothing expects so the match must fail.
    One more text cycles through every repeated character, for quantifiers that overlap only in part."""
    pumps = list(dict.fromkeys(_pumps(parsed, "")))[: MAX_PROBES - 1]
    texts = [before + (pump * PROBE_LENGTH)[:PROBE_LENGTH] + "\x00" for before, pump in pumps]
    mixed = "".join(dict.fromkeys(pump for _, pump in pumps))
    if mixed:
        texts.append((mixed * PROBE_LENGTH)[:PROBE_LENGTH] + "\x00")
    return list(dict.fromkeys(texts))


def check_pattern(pattern: str, flag_names: tuple[str, ...]) -> None:
    """Raise ValueError unless `pattern` compiles and is safe to run on untrusted text.

    Two checks: the shape of the parse tree (nested quantifiers, backreferences), which gives a
    precise reason, then a probe that runs the compiled pattern on hostile texts under a timeout,
    which catches what shapes miss, such as side-by-side quantifiers over the same characters.
    """
    flags = regex_flags(flag_names)
    try:
        re.compile(pattern, flags)
        compiled = compile_pattern(pattern, flag_names)
    except (re.error, regex.error) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    parsed = sre_parser.parse(pattern, flags)
    reason = _backtracking_risk(parsed, inside_repeat=False)
    if reason:
        raise ValueError(reason)
    for text in probe_texts(parsed):
        try:
            compiled.search(text, timeout=PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise ValueError(
                f"too slow: searching {len(text)} characters like {text[:12]!r}... took over "
                f"{PROBE_TIMEOUT_SECONDS * 1000:.0f} ms (overlapping quantifiers backtrack; make the pattern more specific)"
            ) from None


# -- the schema --

COMMON = {
    "name": (_name, REQUIRED),
    "description": (_text, ""),
    "detector": (_text, REQUIRED),
    "weight": (_weight, REQUIRED),
    "category": (_choice(CATEGORIES), REQUIRED),
    "enabled": (_bool, True),
    "instance_rule_ids": (_instance_rule_ids, ()),
    "applies_to": (_applies_to, {}),
}
PARAMS: dict[str, dict[str, tuple[Callable[[Any], Any], Any]]] = {
    "keyword": {
        "keywords": (_string_list, REQUIRED),
        "case_sensitive": (_bool, False),
        "whole_word": (_bool, True),
    },
    "regex": {"pattern": (_name, REQUIRED), "flags": (_flags, ())},
    "posting_rate": {"max_statuses": (_int_at_least(1), REQUIRED), "window_seconds": (_int_at_least(1), REQUIRED)},
    "duplicate_content": {"min_duplicates": (_int_at_least(2), 3), "min_length": (_int_at_least(1), 10)},
    "link_domain": {"domains": (_domains, None), "domains_files": (_string_list, None),
                    "max_links_to_one_domain": (_int_at_least(1), None)},
    "new_account_burst": {
        "max_account_age_days": (_positive_number, REQUIRED),
        "min_statuses": (_int_at_least(1), REQUIRED),
    },
    "media_alt_text": {"media_types": (_one_of(MEDIA_TYPES), ("image", "gifv", "video")), "min_missing": (_int_at_least(1), 1)},
    "media_mime": {"mime_types": (_string_list, None), "media_types": (_one_of(MEDIA_TYPES), None)},
    "new_account": {"max_account_age_days": (_positive_number, REQUIRED), "max_followers": (_int_at_least(0), None)},
    "profile": {"signals": (_one_of(PROFILE_SIGNALS), PROFILE_SIGNALS), "min_signals": (_int_at_least(1), 2)},
    "mentions": {"min_mentions": (_int_at_least(1), 2), "min_posts": (_int_at_least(1), 1),
                 "unrelated_only": (_bool, True), "max_text_chars": (_int_at_least(0), None)},
    "wave": {"min_accounts": (_int_at_least(2), 3), "window_seconds": (_int_at_least(60), 86400),
             "max_account_age_days": (_positive_number, 7), "kinds": (_one_of(WAVE_KINDS), WAVE_KINDS)},
}
# Which `fields` a detector reads, and the default when the rule names none.
FIELDS = {"keyword": TEXT_FIELDS, "regex": TEXT_FIELDS, "link_domain": LINK_FIELDS}
DEFAULT_FIELDS = {"keyword": TEXT_FIELDS, "regex": TEXT_FIELDS, "link_domain": ("status_text",)}
ONE_OF_REQUIRED = {"link_domain": ("domains", "domains_files", "max_links_to_one_domain"),
                   "media_mime": ("mime_types", "media_types")}


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _checked(where: str, data: dict[str, Any], schema: dict[str, tuple[Callable[[Any], Any], Any]]) -> dict[str, Any]:
    out = {}
    for key, (check, default) in schema.items():
        if key not in data:
            if default is REQUIRED:
                raise RulesError(f"{where}field '{key}': required")
            out[key] = default
            continue
        try:
            out[key] = check(data[key])
        except ValueError as exc:
            raise RulesError(f"{where}field '{key}': {exc}") from None
    return out


def _rule(prefix: str, index: int, raw: Any) -> Rule:
    name = raw.get("name") if isinstance(raw, dict) else None
    label = f"rule '{name.strip()}' (#{index})" if isinstance(name, str) and name.strip() else f"rule #{index}"
    where = f"{prefix}{label}: "
    if not isinstance(raw, dict):
        raise RulesError(f"{where}must be a mapping")
    common = _checked(where, raw, COMMON)
    if common["category"] == "violation" and not common["instance_rule_ids"]:
        raise RulesError(f"{where}field 'instance_rule_ids': required when category is 'violation' "
                         "(Mastodon files a violation report against the instance's own rules)")
    detector = common["detector"]
    if detector not in PARAMS:
        raise RulesError(f"{where}field 'detector': {detector!r} is not one of {', '.join(PARAMS)}")
    params = _checked(where, raw, PARAMS[detector])
    fields: tuple[str, ...] = ()
    if detector in FIELDS:
        fields = DEFAULT_FIELDS[detector]
        if "fields" in raw:
            try:
                fields = _string_list(raw["fields"], FIELDS[detector])
            except ValueError as exc:
                raise RulesError(f"{where}field 'fields': {exc}") from None
    for key in raw:
        if key not in COMMON and key not in PARAMS[detector] and not (key == "fields" and detector in FIELDS):
            raise RulesError(f"{where}field '{key}': unknown for detector '{detector}'")
    required = ONE_OF_REQUIRED.get(detector, ())
    if required and all(params[key] is None for key in required):
        raise RulesError(f"{where}field '{required[0]}': one of {' or '.join(map(repr, required))} is required")
    if detector == "regex":
        try:
            check_pattern(params["pattern"], params["flags"])
        except ValueError as exc:
            raise RulesError(f"{where}field 'pattern': {exc}") from None
    return Rule(
        name=common["name"],
        detector=detector,
        weight=common["weight"],
        category=common["category"],
        description=common["description"],
        fields=fields,
        enabled=common["enabled"],
        instance_rule_ids=common["instance_rule_ids"],
        applies_to=common["applies_to"],
        params={key: value for key, value in params.items() if value is not None},
    )


def _rule_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("must be a list of rules")
    return value


TOP_LEVEL = {
    "version": (_int_at_least(1), REQUIRED),
    "report_threshold": (_positive_number, None),
    # Domains no link rule or wave counts (popular sites), listed and/or in files beside the rules file.
    "allowed_domains": (_domains, ()),
    "allowed_domains_files": (_string_list, ()),
    "rules": (_rule_list, REQUIRED),
}


@dataclass(frozen=True)
class RulesFile:
    rules: list[Rule]
    report_threshold: float | None
    allowed_domains: frozenset[str] = frozenset()
    # Every domain-list file the rules read: a change to any of them reloads the rules.
    files: tuple[Path, ...] = ()


def parse_rules(source: bytes, filename: str, directory: Path | None = None) -> RulesFile:
    """The enabled and disabled rules of a rules file, its report threshold (or None) and allowed
    domains; domain-list files are read relative to `directory` (the rules file's)."""
    where = f"{filename}: "
    try:
        data = yaml.load(source, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise RulesError(f"{where}invalid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise RulesError(f"{where}must be a mapping with 'version' and 'rules'")
    top = _checked(where, data, TOP_LEVEL)
    unknown = sorted(set(data) - set(TOP_LEVEL), key=str)
    if unknown:
        raise RulesError(f"{where}field '{unknown[0]}': unknown top-level key")
    if top["version"] != FILE_VERSION:
        raise RulesError(f"{where}field 'version': must be {FILE_VERSION}")
    rules = [_rule(where, index, raw) for index, raw in enumerate(top["rules"], start=1)]
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules, start=1):
        if rule.name in seen:
            raise RulesError(f"{where}rule '{rule.name}' (#{index}): field 'name': duplicate of rule #{seen[rule.name]}")
        seen[rule.name] = index
    directory = directory or Path.cwd()
    files: list[Path] = []

    def read_lists(names: tuple[str, ...], where_: str) -> frozenset[str]:
        found: set[str] = set()
        for name in names:
            path = (directory / name).resolve()
            files.append(path)
            try:
                found |= read_domain_list(path)
            except DomainListError as exc:
                raise RulesError(f"{where_}{exc}") from None
        return frozenset(found)

    for index, rule in enumerate(rules):
        if rule.detector == "link_domain" and rule.params.get("domains_files"):
            listed = read_lists(rule.params["domains_files"], f"{where}rule '{rule.name}' (#{index + 1}): field 'domains_files': ")
            rule.params["domains"] = tuple(dict.fromkeys([*rule.params.get("domains", ()), *sorted(listed)]))
    allowed = frozenset(top["allowed_domains"]) | read_lists(top["allowed_domains_files"], f"{where}field 'allowed_domains_files': ")
    return RulesFile(rules, top["report_threshold"], allowed, tuple(files))


def read_rules(path: str | Path) -> tuple[bytes, RulesFile]:
    path = Path(path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise RulesError(f"{path.name}: cannot read {path}: {exc.strerror}") from None
    return source, parse_rules(source, path.name, path.parent)
