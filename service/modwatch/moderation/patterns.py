"""Regex rules' patterns: how they are compiled, and the guard that refuses patterns that could stall
the engine on hostile text."""

from __future__ import annotations

import re
from re import _constants as sre_constants  # the parse tree is the only way to see nesting
from re import _parser as sre_parser
from typing import Any, Iterator

import regex

REGEX_FLAGS = {
    "ignorecase": re.IGNORECASE,
    "multiline": re.MULTILINE,
    "dotall": re.DOTALL,
    "ascii": re.ASCII,
    "verbose": re.VERBOSE,
}
# The load-time probe: each compiled pattern is searched in a few hostile texts this long, and a
# search that exceeds the timeout (CPU seconds, measured by the `regex` module) rejects the rule.
PROBE_LENGTH = 2000
PROBE_TIMEOUT_SECONDS = 0.1
MAX_PROBES = 16


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
