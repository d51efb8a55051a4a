"""Plain text and links out of Mastodon's HTML, normalised for matching.

Mastodon sends `content`, `note` and profile field values as HTML; everything else (display
name, spoiler text, alt text) is plain text. Both end up as the same normalised text, so rules
see what a reader sees.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any, NamedTuple
from urllib.parse import urlsplit

# Rules only ever look at this much of one field: it bounds the work a hostile post can cause
# (a 100 kB status from a server without a length limit) whatever the patterns are.
MAX_FIELD_CHARS = 5000
# HTML values whose parse is remembered. The stream analyses an account at each of its posts with
# its window of up to 40, so a post's content is parsed many times; the cache's keys are the very
# strings the window holds, so it costs the parsed texts only (a few MB).
PARSED_CACHE_SIZE = 20_000

# Invisible characters spammers put inside words to dodge keyword filters.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff"))
_LINE_BREAKING = {"p", "div", "li", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
# Mentions and hashtags are links to profiles and tag pages, not links someone is promoting.
_NOT_PROMOTED = {"mention", "hashtag"}


class Parsed(NamedTuple):
    text: str
    links: tuple[str, ...]


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _LINE_BREAKING:
            self.parts.append("\n")
        elif tag == "a":
            attributes = dict(attrs)
            href = attributes.get("href")
            classes = set((attributes.get("class") or "").split())
            if href and not classes & _NOT_PROMOTED:
                self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skipping = max(0, self._skipping - 1)
        elif tag in _LINE_BREAKING:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def normalise(text: str) -> str:
    """NFKC (fullwidth and styled letters become plain ones), invisible characters removed, capped."""
    text = unicodedata.normalize("NFKC", text[: MAX_FIELD_CHARS * 2]).translate(_INVISIBLE)
    return text.strip()[:MAX_FIELD_CHARS]


def plain(value: Any) -> str:
    """A plain-text field; anything that is not a string (missing, null) is empty."""
    return normalise(value) if isinstance(value, str) else ""


def parse_html(value: Any) -> Parsed:
    """Text as displayed (tags removed, entities unescaped, paragraphs and <br> as newlines) and hrefs."""
    if not isinstance(value, str) or not value:
        return Parsed("", ())
    if "<" not in value and "&" not in value:
        return Parsed(normalise(value), ())
    return _parse_markup(value)


@lru_cache(maxsize=PARSED_CACHE_SIZE)
def _parse_markup(value: str) -> Parsed:
    extractor = _Extractor()
    extractor.feed(value)
    extractor.close()
    text = "".join(extractor.parts)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return Parsed(normalise("\n".join(line for line in lines if line)), tuple(extractor.links))


def domain_of(url: Any) -> str | None:
    """Host name of an http(s) link, lower case, without a leading `www.`; None for anything else."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host.removeprefix("www.")
