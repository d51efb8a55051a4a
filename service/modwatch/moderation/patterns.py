"""Regex rules' patterns, compiled with RE2 (google-re2).

RE2 matches in time linear in the text whatever the pattern, so a rule written without care
(`(a+)+$`) cannot stall the engine on hostile text: there is nothing to guard or time out. The
price is the features that need backtracking, which RE2 refuses when the rules file is loaded:
backreferences, lookahead and lookbehind, possessive quantifiers and atomic groups (docs/rules.md).

Rules are written for Python's `re`, where `\\w`, `\\d` and `\\s` are Unicode classes; RE2's are
ASCII. `unicode_classes` rewrites them to RE2's Unicode properties unless the rule asks for `ascii`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

# Flag names of the rules file and the inline flags RE2 knows them by (`ascii`: keep RE2's own
# ASCII classes).
REGEX_FLAGS = {"ignorecase": "i", "multiline": "m", "dotall": "s", "ascii": ""}
# Python's Unicode classes as RE2 class members: \w is str.isalnum() or `_`, \d the decimal digits
# (Nd), \s str.isspace() (ASCII whitespace, the separators \x1c-\x1f, NEL and every Z character).
_UNICODE_MEMBERS = {"w": r"\p{L}\p{N}_", "d": r"\p{Nd}", "s": r"\t-\r\x{1c}-\x{20}\x{85}\p{Z}"}
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # an invalid pattern is reported to the operator as a RulesError, not on stderr


def unicode_classes(pattern: str) -> str:
    r"""`pattern` with \w \d \s (and their negations) spelled as RE2 Unicode classes.

    A small scan of the pattern: escapes are copied as they are except those six, `\Q...\E` is copied
    whole, and inside `[...]` a class adds its members. A negated class inside `[...]` (`[\W_]`)
    has no such spelling and is refused.
    """
    out: list[str] = []
    in_set = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            members = _UNICODE_MEMBERS.get(escaped.lower())
            if escaped == "Q":  # a literal run up to \E: nothing in it is a class
                end = pattern.find(r"\E", index)
                end = len(pattern) if end == -1 else end + 2
                out.append(pattern[index:end])
                index = end
                continue
            if members is None:
                out.append(pattern[index : index + 2])
            elif escaped.islower():
                out.append(members if in_set else f"[{members}]")
            elif in_set:
                raise ValueError(rf"\{escaped} inside [...] is not supported: write [^...] with the characters to exclude")
            else:
                out.append(f"[^{members}]")
            index += 2
            continue
        if char == "[" and not in_set:
            in_set = True
            out.append(char)
            index += 1
            # A `]` first in a set (after an optional `^`) is a member, not the end.
            for opening in ("^", "]"):
                if pattern.startswith(opening, index):
                    out.append(opening)
                    index += 1
            continue
        if char == "[" and in_set and pattern.startswith("[:", index):  # [[:alpha:]]
            end = pattern.find(":]", index + 2)
            if end != -1:
                out.append(pattern[index : end + 2])
                index = end + 2
                continue
        if char == "]" and in_set:
            in_set = False
        out.append(char)
        index += 1
    return "".join(out)


# Compiled patterns are immutable and safe to share between threads; a rule's pattern is compiled
# once for validation and matching, and again only when it changes (a reload keeps the others).
# Unicode classes make compiling slow (`\w{3,20}` is 15 ms: twenty copies of every letter).
@lru_cache(maxsize=1024)
def compile_pattern(pattern: str, flag_names: tuple[str, ...]) -> Any:
    """A regex rule's pattern as the engine runs it; ValueError saying why RE2 refuses it."""
    flags = "".join(REGEX_FLAGS[name] for name in flag_names)
    source = pattern if "ascii" in flag_names else unicode_classes(pattern)
    try:
        return re2.compile(f"(?{flags}){source}" if flags else source, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"not a pattern RE2 can run: {reason} (see 'regex' in docs/rules.md)") from None
