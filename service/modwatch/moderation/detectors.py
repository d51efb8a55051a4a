"""What each detector looks for, and the parameters its rules take.

`Material` is an account and its statuses reduced once to what rules read (normalised text per
field, links, timestamps, media). Text detectors are compiled per field for a whole rule set;
behavioural and media detectors are plain functions of one rule and the material.

A detector is its parameter model (a `DetectorRule`, validated by rules.py) declared next to its
function, and one line in DETECTORS at the end: adding a detector touches this file only.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import threading
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from typing import Annotated, Any, Callable, Iterator, NamedTuple
from urllib.parse import urlsplit

from pydantic import model_validator

from modwatch.moderation.domains import covered
from modwatch.moderation.patterns import REGEX_FLAGS, compile_pattern
from modwatch.moderation.schema import (
    LINK_FIELDS,
    TEXT_FIELDS,
    AtLeast,
    DetectorRule,
    Domains,
    Flag,
    Name,
    PositiveNumber,
    Rule,
    Strings,
    invalid,
    require_one_of,
)
from modwatch.moderation.text import domain_of, parse_html, plain

MAX_EVIDENCE_CHARS = 200
# Texts whose matches each TextMatcher remembers: about 150 bytes a text (most match nothing), so
# 3 MB per matcher at most.
SCAN_CACHE_SIZE = 20_000
_WORD = re.compile(r"\w+")
_PLAIN_WORDS = re.compile(r"\w+(?:\s+\w+)*")


class Evidence(NamedTuple):
    rule: Rule
    field: str
    matched_text: str
    status_id: str | None


class Snippet(NamedTuple):
    text: str
    status_id: str | None


class Post(NamedTuple):
    id: str | None
    created_at: datetime | None
    text: str
    links: tuple[str, ...]
    media: tuple[dict[str, Any], ...]
    # acct of each mentioned account, and the account replied to (a mention of it is a conversation)
    mentions: tuple[str, ...] = ()
    reply_to_account: str | None = None


class WaveMatch(NamedTuple):
    """Other young accounts that posted something sharing this post's fingerprint (from `waves`)."""

    kind: str
    status_id: str | None
    accounts: int
    sample: str


@dataclass(frozen=True)
class Material:
    created_at: datetime | None
    statuses_count: int | None
    texts: dict[str, list[Snippet]]
    links: dict[str, list[Snippet]]
    posts: list[Post]
    followers_count: int | None = None
    following_count: int | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    waves: tuple[WaveMatch, ...] = ()


def timestamp(value: Any) -> datetime | None:
    """An aware datetime from an ISO string (Mastodon's JSON) or a datetime (Mastodon.py's objects)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def gather(account: dict[str, Any], statuses: list[dict[str, Any]], allowed_domains: frozenset[str] = frozenset()) -> Material:
    """Strip every HTML field once; missing or mistyped fields become empty, never an error.

    Links to `allowed_domains` (and their subdomains) are left out of what link rules read.
    """
    note = parse_html(account.get("note"))
    texts: dict[str, list[Snippet]] = defaultdict(list)
    links: dict[str, list[Snippet]] = defaultdict(list)
    for name in ("username", "display_name"):
        texts[name].append(Snippet(plain(account.get(name)), None))
    texts["note"].append(Snippet(note.text, None))
    links["note"].extend(Snippet(link, None) for link in note.links)
    for profile_field in _items(account.get("fields")):
        value = parse_html(profile_field.get("value"))
        texts["fields"].append(Snippet(f"{plain(profile_field.get('name'))}\n{value.text}".strip(), None))
        links["fields"].extend(Snippet(link, None) for link in value.links)

    posts = []
    for status in statuses if isinstance(statuses, list) else []:
        if not isinstance(status, dict):
            continue
        status_id = str(status["id"]) if status.get("id") is not None else None
        content = parse_html(status.get("content"))
        card = status.get("card")
        card_url = card.get("url") if isinstance(card, dict) and isinstance(card.get("url"), str) else None
        status_links = tuple(dict.fromkeys([*content.links, *([card_url] if card_url else [])]))
        media = tuple(_items(status.get("media_attachments")))
        mentioned = _items(status.get("mentions"))
        posts.append(Post(status_id, timestamp(status.get("created_at")), content.text, status_links, media,
                          tuple(str(item.get("acct") or "") for item in mentioned),
                          _text_or_none(status.get("in_reply_to_account_id"))))
        texts["status_text"].append(Snippet(content.text, status_id))
        texts["spoiler_text"].append(Snippet(plain(status.get("spoiler_text")), status_id))
        texts["media_description"].extend(Snippet(plain(item.get("description")), status_id) for item in media)
        links["status_text"].extend(Snippet(link, status_id) for link in status_links)
        links["mentions"].extend(Snippet(f"https://{host}/", status_id) for acct in posts[-1].mentions
                                 if (host := acct.partition("@")[2]))

    home = str(account.get("acct") or "").partition("@")[2]
    if home:
        links["account"].append(Snippet(f"https://{home}/", None))
    if allowed_domains:
        links = {name: [snippet for snippet in snippets if not covered(domain_of(snippet.text) or "", allowed_domains)]
                 for name, snippets in links.items()}
    return Material(
        created_at=timestamp(account.get("created_at")),
        statuses_count=_count(account.get("statuses_count")),
        texts={name: [snippet for snippet in snippets if snippet.text] for name, snippets in texts.items()},
        links=dict(links),
        posts=posts,
        followers_count=_count(account.get("followers_count")),
        following_count=_count(account.get("following_count")),
        profile={
            "username": plain(account.get("username")),
            "display_name": plain(account.get("display_name")),
            "avatar": account.get("avatar") if isinstance(account.get("avatar"), str) else "",
            "note": note.text,
            "fields": len(_items(account.get("fields"))),
        },
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_EVIDENCE_CHARS else text[: MAX_EVIDENCE_CHARS - 1] + "…"


# -- text detectors --


class KeywordRule(DetectorRule):
    keywords: Annotated[tuple[str, ...], Strings()]
    case_sensitive: Flag = False
    whole_word: Flag = True
    fields: Annotated[tuple[str, ...], Strings(TEXT_FIELDS)] = TEXT_FIELDS


class RegexRule(DetectorRule):
    pattern: Name
    flags: Annotated[tuple[str, ...], Strings(tuple(REGEX_FLAGS))] = ()
    fields: Annotated[tuple[str, ...], Strings(TEXT_FIELDS)] = TEXT_FIELDS

    @model_validator(mode="after")
    def _runs_on_re2(self) -> RegexRule:
        try:
            compile_pattern(self.pattern, self.flags)
        except ValueError as exc:
            raise invalid(f"field 'pattern': {exc}") from None
        return self


class TextMatcher:
    """Every keyword and regex rule that reads one field, run in one pass over each text.

    Whole-word keywords made of words (the usual kind) are looked up in dicts keyed by a text's
    words and short phrases, so the cost does not grow with the number of keywords. Other
    keywords (`whole_word: false`, or with punctuation such as `bit.ly`) get one `re` pattern per
    rule: escaped literals, which cannot backtrack. Those with the same flags sit behind a gate: one
    search for all of them at once (`_gate`). Most texts match none of them, and then cost that one
    search instead of one per rule; when the gate matches, each pattern runs on its own, so every
    rule still reports its own first match.

    Regex rules run on RE2 (patterns.py), in time linear in the text, one search each. A gate does
    not pay there: the alternation of the default rules' patterns made the corpus slower to score
    (0.87 s against 0.56 s), and of 120 patterns with Unicode classes, slower than the 120 searches
    (RE2's automaton for it outgrows its cache) and seconds to compile.

    What a text matched is remembered (`SCAN_CACHE_SIZE` texts per matcher, least recently used
    forgotten): an account's recent posts are scanned again at each of its analyses (the stream
    analyses an account at every post, with its window of up to 40), and a spam wave repeats one
    text. The matcher is built anew when the rules change, and its memory with it.
    """

    def __init__(self, rules: list[Rule]) -> None:
        self._found: OrderedDict[bytes, tuple[tuple[Rule, str], ...]] = OrderedDict()
        self._found_lock = threading.Lock()
        self.phrases: dict[bool, dict[str, list[Rule]]] = {True: defaultdict(list), False: defaultdict(list)}
        self.phrase_starts: set[str] = set()
        self.keyword_patterns: list[tuple[Rule, re.Pattern[str]]] = []
        regexes: list[tuple[Rule, Any]] = []
        for rule in rules:
            if rule.detector == "regex":
                regexes.append((rule, compile_pattern(rule.params["pattern"], rule.params["flags"])))
            else:
                self._add_keywords(rule)
        by_flags: dict[int, list[tuple[Rule, re.Pattern[str]]]] = defaultdict(list)
        for rule, pattern in self.keyword_patterns:
            by_flags[pattern.flags].append((rule, pattern))
        self.keyword_gates = [_gate(members, flags) for flags, members in by_flags.items()]
        self.regexes = regexes

    def _add_keywords(self, rule: Rule) -> None:
        case_sensitive, whole_word = rule.params["case_sensitive"], rule.params["whole_word"]
        others = []
        for keyword in rule.params["keywords"]:
            if whole_word and _PLAIN_WORDS.fullmatch(keyword):
                words = keyword.split() if case_sensitive else keyword.casefold().split()
                self.phrases[case_sensitive][" ".join(words)].append(rule)
                self.phrase_starts.update(" ".join(words[:n]) for n in range(1, len(words)))
            else:
                others.append(keyword)
        if others:
            alternatives = "|".join(_keyword_pattern(keyword, whole_word) for keyword in sorted(others, key=len, reverse=True))
            self.keyword_patterns.append((rule, re.compile(alternatives, 0 if case_sensitive else re.IGNORECASE)))

    def scan(self, text: str) -> tuple[tuple[Rule, str], ...]:
        """The rules that match `text`, each with its first match."""
        # A digest, so the cache holds no texts: 16 bytes a key.
        key = hashlib.blake2b(text.encode(), digest_size=16).digest()
        with self._found_lock:
            found = self._found.get(key)
            if found is not None:
                self._found.move_to_end(key)
                return found
        found = tuple(self._scan(text))
        with self._found_lock:
            self._found[key] = found
            if len(self._found) > SCAN_CACHE_SIZE:
                self._found.popitem(last=False)
        return found

    def _scan(self, text: str) -> Iterator[tuple[Rule, str]]:
        if self.phrases[True] or self.phrases[False]:
            yield from self._scan_words(text)
        for gate, members in self.keyword_gates:
            if gate is not None and not gate.search(text):
                continue
            yield from _first_matches(members, text)
        yield from _first_matches(self.regexes, text)

    def _scan_words(self, text: str) -> Iterator[tuple[Rule, str]]:
        words = list(_WORD.finditer(text))
        for start, first in enumerate(words):
            exact, folded = first.group(), first.group().casefold()
            end = start
            while True:
                for rule in self.phrases[True].get(exact, ()):
                    yield rule, text[first.start() : words[end].end()]
                for rule in self.phrases[False].get(folded, ()):
                    yield rule, text[first.start() : words[end].end()]
                end += 1
                if end == len(words) or not (exact in self.phrase_starts or folded in self.phrase_starts):
                    break
                if not text[words[end - 1].end() : words[end].start()].isspace():
                    break
                exact, folded = f"{exact} {words[end].group()}", f"{folded} {words[end].group().casefold()}"


def _first_matches(members: list[tuple[Rule, Any]], text: str) -> Iterator[tuple[Rule, str]]:
    for rule, pattern in members:
        match = pattern.search(text)
        if match:
            yield rule, _clip(match.group())


def _gate(members: list[tuple[Rule, re.Pattern[str]]], flags: int) -> tuple[re.Pattern[str] | None, list[tuple[Rule, re.Pattern[str]]]]:
    """`members` (keyword patterns with the same flags) behind a gate: the alternation of their
    patterns, which matches a text when any of them does (None for a single member)."""
    if len(members) < 2:
        return None, members
    alternatives = dict.fromkeys(pattern.pattern for _, pattern in members)  # once each, in order
    return re.compile("|".join(f"(?:{alternative})" for alternative in alternatives), flags), members


def _keyword_pattern(keyword: str, whole_word: bool) -> str:
    """A literal keyword; word boundaries only where the keyword itself starts or ends with a word character."""
    pattern = re.escape(keyword)
    if whole_word and _WORD.match(keyword[0]):
        pattern = r"(?<!\w)" + pattern
    if whole_word and _WORD.match(keyword[-1]):
        pattern += r"(?!\w)"
    return pattern


# -- behavioural detectors --


class PostingRateRule(DetectorRule):
    max_statuses: Annotated[int, AtLeast(1)]
    window_seconds: Annotated[int, AtLeast(1)]


def posting_rate(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """More than `max_statuses` statuses inside some `window_seconds` window: the busiest window is the evidence."""
    window = timedelta(seconds=rule.params["window_seconds"])
    timed = sorted(((post.created_at, post) for post in material.posts if post.created_at is not None),
                   key=lambda item: item[0])
    best: tuple[int, int] = (0, 0)
    first = 0
    for last, (created_at, _) in enumerate(timed):
        while created_at - timed[first][0] > window:
            first += 1
        if last + 1 - first > best[1] - best[0]:
            best = (first, last + 1)
    burst = [post for _, post in timed[best[0] : best[1]]]
    if len(burst) <= rule.params["max_statuses"]:
        return []
    summary = f"{len(burst)} statuses within {rule.params['window_seconds']}s"
    return [Evidence(rule, "created_at", summary, post.id) for post in burst]


class DuplicateContentRule(DetectorRule):
    min_duplicates: Annotated[int, AtLeast(2)] = 3
    min_length: Annotated[int, AtLeast(1)] = 10


def duplicate_content(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """The same text (case and spacing ignored) in at least `min_duplicates` statuses."""
    groups: dict[str, list[Post]] = defaultdict(list)
    for post in material.posts:
        key = " ".join(post.text.casefold().split())
        if len(key) >= rule.params["min_length"]:
            groups[key].append(post)
    return [
        Evidence(rule, "status_text", _clip(post.text), post.id)
        for posts in groups.values()
        if len(posts) >= rule.params["min_duplicates"]
        for post in posts
    ]


class LinkDomainRule(DetectorRule):
    domains: Domains | None = None
    domains_files: Annotated[tuple[str, ...], Strings()] | None = None  # read by rules.py into `domains`
    max_links_to_one_domain: Annotated[int, AtLeast(1)] | None = None
    fields: Annotated[tuple[str, ...], Strings(LINK_FIELDS)] = ("status_text",)

    @model_validator(mode="after")
    def _something_to_look_for(self) -> LinkDomainRule:
        require_one_of(self, ("domains", "domains_files", "max_links_to_one_domain"))
        return self


def link_domain(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """Links to a listed domain (or its subdomains), or more than `max_links_to_one_domain` links to one domain."""
    linked = [
        (field, snippet, domain)
        for field in rule.fields
        for snippet in material.links.get(field, ())
        if (domain := domain_of(snippet.text))
    ]
    listed = rule.params.get("domains", ())
    limit = rule.params.get("max_links_to_one_domain")
    per_domain = Counter(domain for _, _, domain in linked)
    return [
        Evidence(rule, field, _clip(snippet.text), snippet.status_id)
        for field, snippet, domain in linked
        if any(domain == listed_domain or domain.endswith(f".{listed_domain}") for listed_domain in listed)
        or (limit is not None and per_domain[domain] > limit)
    ]


class NewAccountBurstRule(DetectorRule):
    max_account_age_days: PositiveNumber
    min_statuses: Annotated[int, AtLeast(1)]


def new_account_burst(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """An account younger than `max_account_age_days` that already has `min_statuses` statuses."""
    if material.created_at is None:
        return []
    age = max(now - material.created_at, timedelta(0))
    if age > timedelta(days=rule.params["max_account_age_days"]):
        return []
    count = max(material.statuses_count or 0, len(material.posts))
    if count < rule.params["min_statuses"]:
        return []
    summary = f"{count} statuses from an account {age / timedelta(days=1):.1f} days old"
    return [Evidence(rule, "statuses_count", summary, None)]


# -- media detectors --

MEDIA_TYPES = ("image", "gifv", "video", "audio", "unknown")


class MediaAltTextRule(DetectorRule):
    media_types: Annotated[tuple[str, ...], Strings(MEDIA_TYPES)] = ("image", "gifv", "video")
    min_missing: Annotated[int, AtLeast(1)] = 1


def media_alt_text(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """At least `min_missing` attachments of `media_types` without a description."""
    missing = [
        Evidence(rule, "media_description", f"{item.get('type')} without alt text", post.id)
        for post in material.posts
        for item in post.media
        if item.get("type") in rule.params["media_types"] and not plain(item.get("description"))
    ]
    return missing if len(missing) >= rule.params["min_missing"] else []


def _mime_type(item: dict[str, Any]) -> str | None:
    """Mastodon does not send MIME types: guess from the file name of the (remote) URL."""
    for key in ("url", "remote_url"):
        url = item.get(key)
        if isinstance(url, str) and url:
            try:
                guessed, _ = mimetypes.guess_type(urlsplit(url).path, strict=False)
            except ValueError:
                continue
            if guessed:
                return guessed
    return None


class MediaMimeRule(DetectorRule):
    mime_types: Annotated[tuple[str, ...], Strings()] | None = None
    media_types: Annotated[tuple[str, ...], Strings(MEDIA_TYPES)] | None = None

    @model_validator(mode="after")
    def _something_to_look_for(self) -> MediaMimeRule:
        require_one_of(self, ("mime_types", "media_types"))
        return self


def media_mime(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """Attachments whose media type is listed in `media_types` or whose MIME type matches `mime_types` (globs)."""
    evidence = []
    for post in material.posts:
        for item in post.media:
            media_type, mime = item.get("type"), _mime_type(item)
            listed_type = media_type in rule.params.get("media_types", ())
            listed_mime = mime is not None and any(fnmatchcase(mime, glob) for glob in rule.params.get("mime_types", ()))
            if listed_type or listed_mime:
                evidence.append(Evidence(rule, "media_attachments", f"{media_type} {mime or 'unknown MIME type'}", post.id))
    return evidence


# -- account and behaviour signals --


def age_days(material: Material, now: datetime) -> float | None:
    if material.created_at is None:
        return None
    return max(now - material.created_at, timedelta(0)) / timedelta(days=1)


def within(limits: dict[str, float], material: Material, now: datetime) -> bool:
    """Whether the account is inside every limit of a rule's `applies_to` (unknown values are not)."""
    for key, limit in limits.items():
        if key == "max_account_age_days":
            value: float | None = age_days(material, now)
        elif key == "max_followers":
            value = material.followers_count
        else:
            value = max(material.statuses_count or 0, len(material.posts))
        if value is None or value > limit:
            return False
    return True


class NewAccountRule(DetectorRule):
    max_account_age_days: PositiveNumber
    max_followers: Annotated[int, AtLeast(0)] | None = None


def new_account(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """An account younger than `max_account_age_days` (with at most `max_followers` followers)."""
    age = age_days(material, now)
    if age is None or age > rule.params["max_account_age_days"]:
        return []
    followers = material.followers_count
    limit = rule.params.get("max_followers")
    if limit is not None and (followers is None or followers > limit):
        return []
    return [Evidence(rule, "created_at", f"account {age * 24:.1f} hours old, {followers if followers is not None else '?'} followers", None)]


_MISSING_AVATAR = "/avatars/original/missing.png"
_VOWELS = set("aeiouy")
_MENTION_TEXT = re.compile(r"(?<![\w/])@[\w.-]+(?:@[\w.-]+)?")


def random_looking(name: str) -> bool:
    """A handle like `xk3j9qzw` or `maria847261`: long digit runs, or letters with too few vowels to say."""
    name = name.lower().strip("_.")
    digits = sum(char.isdigit() for char in name)
    letters = [char for char in name if char.isascii() and char.isalpha()]
    switches = sum(a.isdigit() != b.isdigit() for a, b in zip(name, name[1:]) if a.isalnum() and b.isalnum())
    if digits >= 4 or switches >= 3:  # a long number, or letters and digits shuffled (`k3j9`)
        return True
    if len(letters) >= 6:
        vowels = sum(char in _VOWELS for char in letters)
        if vowels * 5 < len(letters):
            return True
        # five consonants in a row do not occur in names in any common latin-script language
        run = longest = 0
        for char in letters:
            run = 0 if char in _VOWELS else run + 1
            longest = max(longest, run)
        return longest >= 5
    return False


PROFILE_SIGNALS = ("default_avatar", "empty_note", "no_display_name", "random_username", "no_fields")


class ProfileRule(DetectorRule):
    signals: Annotated[tuple[str, ...], Strings(PROFILE_SIGNALS)] = PROFILE_SIGNALS
    min_signals: Annotated[int, AtLeast(1)] = 2


def profile(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """At least `min_signals` of: default avatar, empty bio, no display name, a random-looking username, no profile fields."""
    info = material.profile
    found = {
        "default_avatar": not info.get("avatar") or info["avatar"].endswith(_MISSING_AVATAR),
        "empty_note": not info.get("note"),
        "no_display_name": not info.get("display_name") or info["display_name"].casefold() == str(info.get("username", "")).casefold(),
        "random_username": random_looking(str(info.get("username", ""))),
        "no_fields": not info.get("fields"),
    }
    signals = [name for name in rule.params["signals"] if found[name]]
    if len(signals) < rule.params["min_signals"]:
        return []
    return [Evidence(rule, "profile", ", ".join(signals), None)]


class MentionsRule(DetectorRule):
    min_mentions: Annotated[int, AtLeast(1)] = 2
    min_posts: Annotated[int, AtLeast(1)] = 1
    unrelated_only: Flag = True
    max_text_chars: Annotated[int, AtLeast(0)] | None = None


def mentions(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """Posts (at least `min_posts`) each mentioning at least `min_mentions` accounts.

    With `unrelated_only`, replies do not count: Mastodon puts the thread's participants in a
    reply's mentions, so they are a conversation. Mentions in a post that starts no conversation
    are people the author picked, which mention spam does at random. With `max_text_chars`, only
    posts saying at most that much besides the mentions count ("hi @someone").
    """
    evidence = []
    limit = rule.params.get("max_text_chars")
    for post in material.posts:
        if rule.params["unrelated_only"] and post.reply_to_account:
            continue
        if limit is not None and len(_MENTION_TEXT.sub("", post.text).strip()) > limit:
            continue
        if len(post.mentions) >= rule.params["min_mentions"]:
            evidence.append(Evidence(rule, "mentions", f"{len(post.mentions)} mentions: {', '.join(post.mentions[:5])}", post.id))
    return evidence if len(evidence) >= rule.params["min_posts"] else []


WAVE_KINDS = ("text", "link_domain", "invite", "media")


class WaveRule(DetectorRule):
    min_accounts: Annotated[int, AtLeast(2)] = 3
    window_seconds: Annotated[int, AtLeast(60)] = 86400
    max_account_age_days: PositiveNumber = 7
    kinds: Annotated[tuple[str, ...], Strings(WAVE_KINDS)] = WAVE_KINDS


def young_for_waves(material: Material, now: datetime, max_account_age_days: float) -> bool:
    """Whether a wave rule with this age limit applies to the account; an unknown age counts as young."""
    return (age_days(material, now) or 0) <= max_account_age_days


def wave(rule: Rule, material: Material, now: datetime) -> list[Evidence]:
    """Posts sharing a fingerprint with posts of at least `min_accounts` - 1 other young accounts (see `waves`)."""
    if not young_for_waves(material, now, rule.params["max_account_age_days"]):
        return []
    return [
        Evidence(rule, f"wave:{match.kind}", _clip(f"{match.accounts} accounts: {match.sample}"), match.status_id)
        for match in material.waves
        if match.kind in rule.params["kinds"] and match.accounts >= rule.params["min_accounts"]
    ]


Find = Callable[[Rule, Material, datetime], list[Evidence]]


class Detector(NamedTuple):
    model: type[DetectorRule]
    # None for text detectors, which TextMatcher runs for all rules of a field at once.
    find: Find | None


# The order of the `detector` list in error messages and docs.
DETECTORS: dict[str, Detector] = {
    "keyword": Detector(KeywordRule, None),
    "regex": Detector(RegexRule, None),
    "posting_rate": Detector(PostingRateRule, posting_rate),
    "duplicate_content": Detector(DuplicateContentRule, duplicate_content),
    "link_domain": Detector(LinkDomainRule, link_domain),
    "new_account_burst": Detector(NewAccountBurstRule, new_account_burst),
    "media_alt_text": Detector(MediaAltTextRule, media_alt_text),
    "media_mime": Detector(MediaMimeRule, media_mime),
    "new_account": Detector(NewAccountRule, new_account),
    "profile": Detector(ProfileRule, profile),
    "mentions": Detector(MentionsRule, mentions),
    "wave": Detector(WaveRule, wave),
}
