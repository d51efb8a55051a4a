"""Regex rules on RE2: patterns that make a backtracking engine hang run in linear time, the features
that need backtracking are refused at load naming rule and field, and Python's Unicode classes
(`\\w`, `\\d`, `\\s`) keep their meaning."""

import time

import pytest

from modwatch.moderation.engine import RulesError
from modwatch.moderation.patterns import unicode_classes

OK_RULE = {"name": "ok-rule", "detector": "keyword", "keywords": ["x"]}
# Each fails on HOSTILE after trying every way to split the run of `a`: 2**4999 ways for `(a+)+$`,
# millions for the side-by-side quantifiers. Python's re takes seconds on 25 characters of the first.
CATASTROPHIC = [r"(a+)+$", r"(\w+\s?)*z", r"\s*a+\s*a+\s*a+$", r"(?:x|(a*))+b", r"(.*a){12}z"]
HOSTILE = "a" * 4999 + "!"


def regex_rule(name, pattern, flags=()):
    return {"name": name, "detector": "regex", "pattern": pattern, **({"flags": list(flags)} if flags else {})}


def test_catastrophic_patterns_cannot_stall_analysis(ruleset):
    rules = ruleset(*(regex_rule(f"backtracks-{index}", pattern) for index, pattern in enumerate(CATASTROPHIC)),
                    {"name": "bang", "detector": "keyword", "keywords": ["a!"], "whole_word": False})
    account = {"id": "9", "display_name": HOSTILE, "note": HOSTILE}
    statuses = [{"id": str(number), "content": HOSTILE} for number in range(40)]

    started = time.process_time()
    analysis = rules.evaluate(account, statuses)
    cpu_seconds = time.process_time() - started

    # 42 texts of 5000 characters, 5 patterns: linear work, milliseconds; the bound
    # leaves room for a slow shared machine and none for backtracking.
    assert cpu_seconds < 2, cpu_seconds
    assert analysis.rule_names == ["bang"]
    assert len(analysis.hits) == 42


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", r"invalid escape sequence: \1"),
        (r"(?P<x>a)(?P=x)", "invalid perl operator: (?P"),
        (r"t\.me/(?!joinchat)\w+", "invalid perl operator: (?!"),
        (r"(?<=@)\w+", "invalid perl operator: (?<="),
        (r"a++b", "bad repetition operator: ++"),
        (r"(?>a+)b", "invalid perl operator: (?>"),
        (r"(?(1)a|b)", "invalid perl operator: (?("),
        (r"(unclosed", "missing ): (unclosed"),
    ],
)
def test_features_that_need_backtracking_are_refused_naming_rule_and_field(ruleset, pattern, reason):
    with pytest.raises(RulesError) as raised:
        ruleset(OK_RULE, regex_rule("needs-backtracking", pattern))
    assert str(raised.value) == (
        f"rules.yaml: rule 'needs-backtracking' (#2): field 'pattern': not a pattern RE2 can run: {reason} "
        "(see 'regex' in docs/rules.md)"
    )


def test_verbose_flag_is_refused(ruleset):
    with pytest.raises(RulesError) as raised:
        ruleset(regex_rule("commented", r"a b", ["verbose"]))
    assert str(raised.value) == (
        "rules.yaml: rule 'commented' (#1): field 'flags': 'verbose' is not one of ignorecase, multiline, dotall, ascii"
    )


def test_flags_apply_to_their_own_rule_only(ruleset):
    rules = ruleset(
        regex_rule("any-case", r"^free money$", ["ignorecase", "multiline"]),
        regex_rule("exact-case", r"^Free Money$", ["multiline"]),
        regex_rule("across-lines", r"free.money", ["dotall"]),
    )
    assert rules.evaluate({"id": "1", "note": "hello\nFREE MONEY"}, []).rule_names == ["any-case"]
    assert rules.evaluate({"id": "1", "note": "hello\nFree Money"}, []).rule_names == ["any-case", "exact-case"]
    assert rules.evaluate({"id": "1", "note": "free\nmoney"}, []).rule_names == ["across-lines"]


def test_unicode_classes_as_in_python_unless_ascii(ruleset):
    rules = ruleset(
        regex_rule("ascii-word", r"^\w+$", ["ascii"]),
        regex_rule("unicode-word", r"^\w+$"),
        regex_rule("digits", r"^\d+$"),
        regex_rule("spaced", r"^no\sbreak$"),
        regex_rule("in-a-set", r"^[\w.]+@[^\s\d]+$"),
    )
    assert rules.evaluate({"id": "1", "username": "café"}, []).rule_names == ["unicode-word"]
    assert rules.evaluate({"id": "1", "username": "cafe"}, []).rule_names == ["ascii-word", "unicode-word"]
    assert rules.evaluate({"id": "1", "username": "٣٤٥"}, []).rule_names == ["unicode-word", "digits"]
    assert rules.evaluate({"id": "1", "note": "no\u00a0break"}, []).rule_names == ["spaced"]
    assert rules.evaluate({"id": "1", "note": "пётр.и@почта"}, []).rule_names == ["in-a-set"]


@pytest.mark.parametrize(
    ("pattern", "rewritten"),
    [
        (r"\w+\W", r"[\p{L}\p{N}_]+[^\p{L}\p{N}_]"),
        (r"[\w.-]\D", r"[\p{L}\p{N}_.-][^\p{Nd}]"),
        (r"[]\d][^\s]", r"[]\p{Nd}][^\t-\r\x{1c}-\x{20}\x{85}\p{Z}]"),
        (r"[[:alpha:]\d]", r"[[:alpha:]\p{Nd}]"),
        (r"\\w \Q\w[\E \p{Greek}\x{41}", r"\\w \Q\w[\E \p{Greek}\x{41}"),  # a literal backslash, a quoted run, other escapes
    ],
)
def test_unicode_classes_rewrite(pattern, rewritten):
    assert unicode_classes(pattern) == rewritten


def test_negated_class_inside_a_set_is_refused(ruleset):
    with pytest.raises(RulesError, match=r"^rules.yaml: rule 'mixed' \(#1\): field 'pattern': \\W inside \[...\] is not supported"):
        ruleset(regex_rule("mixed", r"[\W_]+"))
