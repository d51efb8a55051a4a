"""Waves: many young accounts posting the same thing at once, which no single account shows.

Each post of a young account is reduced to fingerprints:

- `text`: the text with mentions removed, links reduced to their domain, numbers and whitespace
  normalised, as MinHash bands over character 4-grams: two texts that differ in a few words (or
  only in whom they mention) share a band with high probability, unrelated ones almost never;
- `link_domain`: each linked domain that is not on the allow list (popular sites everyone links);
- `invite`: each invite link (Discord, Telegram, WhatsApp, LINE groups), exactly;
- `media`: each image's blurhash, exactly (the same picture uploaded again).

A fingerprint seen from `min_accounts` distinct accounts within the window is a wave. The index
lives in Redis (`RedisWaves`) so every worker sees every post: one sorted set per fingerprint,
account id -> time seen, trimmed to the window and to `MAX_MEMBERS`, expiring with the window, so
memory stays proportional to the young accounts' posts of one window. `MemoryWaves` is the same
index in a dict, for `modwatch eval` and tests.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, NamedTuple, Protocol
from urllib.parse import urlsplit

from modwatch.moderation.detectors import Material, Post, WaveMatch
from modwatch.moderation.domains import covered
from modwatch.moderation.text import domain_of
from modwatch.redis_keys import WAVE_KEY_PREFIX as KEY_PREFIX, WAVES_ACTIVE_KEY as ACTIVE_KEY

MAX_MEMBERS = 200  # accounts remembered per fingerprint: enough to call it a wave many times over
# Keys per script call at most. A script holds Redis, shared with the queues, for all its keys: in
# bench 8 a stream batch (its accounts' windows' posts) had up to 3,000 keys and held Redis for 10 to
# 160 ms on the loaded machine (SLOWLOG, about 8 µs a key). Chunks of 500 keys hold it a few ms; a
# batch takes one round trip per chunk, and other clients get Redis in between.
SCRIPT_MAX_KEYS = 500
MIN_TEXT_CHARS = 16  # "hi", "thanks!" are what everybody writes
SHINGLE = 4
BANDS, ROWS = 4, 8  # P(share a band) = 1-(1-s^8)^4: 0.89 at similarity 0.9, 0.22 at 0.7, 0.02 at 0.5
_MERSENNE = (1 << 61) - 1
_SEEDS = [(int.from_bytes(hashlib.blake2b(f"a{i}".encode(), digest_size=8).digest(), "big") % _MERSENNE | 1,
           int.from_bytes(hashlib.blake2b(f"b{i}".encode(), digest_size=8).digest(), "big") % _MERSENNE)
          for i in range(BANDS * ROWS)]

_MENTION = re.compile(r"(?<![\w/])@[\w.-]+(?:@[\w.-]+)?")
_URL = re.compile(r"https?://\S+")
_DIGITS = re.compile(r"\d+")
_NOT_WORD = re.compile(r"[^\w]+")
INVITE_HOSTS = {"discord.gg": "", "discord.com": "/invite/", "discordapp.com": "/invite/", "t.me": "/", "telegram.me": "/",
                "chat.whatsapp.com": "", "line.me": "/ti/"}


class Fingerprint(NamedTuple):
    kind: str
    key: str
    status_id: str | None
    sample: str


def normalised_text(text: str) -> str:
    """What stays the same across a wave's posts: mentions dropped, links as their domain, digits as 0."""
    text = _URL.sub(lambda match: f" {domain_of(match.group()) or ''} ", text)
    text = _MENTION.sub(" ", text)
    text = _DIGITS.sub("0", text.casefold())
    return " ".join(_NOT_WORD.sub(" ", text).split())


# Cached: an account's posts are fingerprinted again at every analysis (the stream analyses an
# account at each of its posts, with its recent ones), and waves repeat one text many times. Keyed
# on a 16-byte digest, so the cache holds no texts: 50,000 entries are about 15 MB.
BANDS_CACHE_SIZE = 50_000
_bands_cache: OrderedDict[bytes, tuple[str, ...]] = OrderedDict()
_bands_lock = threading.Lock()


def _minhash_bands(text: str) -> tuple[str, ...]:
    key = hashlib.blake2b(text.encode(), digest_size=16).digest()
    with _bands_lock:
        cached = _bands_cache.get(key)
        if cached is not None:
            _bands_cache.move_to_end(key)
            return cached
    bands = _compute_bands(text)
    with _bands_lock:
        _bands_cache[key] = bands
        if len(_bands_cache) > BANDS_CACHE_SIZE:
            _bands_cache.popitem(last=False)
    return bands


def _compute_bands(text: str) -> tuple[str, ...]:
    shingles = {text[i:i + SHINGLE] for i in range(max(1, len(text) - SHINGLE + 1))}
    hashed = [struct.unpack("<Q", hashlib.blake2b(s.encode(), digest_size=8).digest())[0] for s in shingles]
    mins = [min((a * h + b) % _MERSENNE for h in hashed) for a, b in _SEEDS]
    return tuple(f"{band}:" + hashlib.blake2b(repr(mins[band * ROWS:(band + 1) * ROWS]).encode(), digest_size=8).hexdigest()
                 for band in range(BANDS))


def invite_of(url: str) -> str | None:
    """`host/path` of a group invite link, or None."""
    host = domain_of(url)
    if host not in INVITE_HOSTS:
        return None
    path = urlsplit(url).path.rstrip("/")
    prefix = INVITE_HOSTS[host]
    if prefix and not path.startswith(prefix):
        return None
    if host in ("t.me", "telegram.me") and not (path.startswith("/+") or path.startswith("/joinchat")):
        return None  # a public channel or a person, not an invite
    return f"{host}{path}" if len(path) > 1 else None


def fingerprints(post: Post, allowed_domains: frozenset[str] = frozenset()) -> list[Fingerprint]:
    found = []
    text = normalised_text(post.text)
    # Replies are left out of text waves: "thanks for the welcome!" is what every newcomer answers.
    if len(text) >= MIN_TEXT_CHARS and not post.reply_to_account:
        found += [Fingerprint("text", band, post.id, text[:80]) for band in _minhash_bands(text)]
    for url in post.links:
        invite = invite_of(url)
        if invite:
            found.append(Fingerprint("invite", invite, post.id, invite))
            continue
        domain = domain_of(url)
        if domain and not covered(domain, allowed_domains):
            found.append(Fingerprint("link_domain", domain, post.id, domain))
    for item in post.media:
        blurhash = item.get("blurhash")
        if item.get("type") in ("image", "gifv", "video") and isinstance(blurhash, str) and len(blurhash) >= 6:
            found.append(Fingerprint("media", blurhash, post.id, f"the same {item.get('type')}"))
    return list({(fp.kind, fp.key): fp for fp in found}.values())  # once per post


class Observation(NamedTuple):
    """One account's fingerprint keys, added to the index when `record`."""

    account_id: str
    keys: list[str]
    record: bool


# Per key: the distinct accounts within the window and, when this observation added its account
# to the key, the accounts the key holds now (else empty).
Counts = dict[str, tuple[int, list[str]]]


class WaveIndex(Protocol):
    def observe_many(self, observations: list[Observation], at: float, window: int) -> list[Counts]:
        """Each observation in turn, as if alone and one after the other: each sees the accounts the
        ones before it added."""


@dataclass
class Observed:
    matches: tuple[WaveMatch, ...]
    # Accounts already in a wave that this observation completed: they deserve a second look.
    earlier_members: tuple[str, ...]
    active_keys: tuple[str, ...]


NOTHING = Observed((), (), ())


def observe(index: WaveIndex, account_id: str, material: Material, now: datetime, min_accounts: int, window: int,
            kinds: Iterable[str], allowed_domains: frozenset[str] = frozenset(), record: bool = True) -> Observed:
    """Fingerprint the account's posts, record them, and say which are part of a wave."""
    return observe_many(index, [(account_id, material, record)], now, min_accounts, window, kinds, allowed_domains)[0]


def observe_many(index: WaveIndex, accounts: list[tuple[str, Material, bool]], now: datetime, min_accounts: int,
                 window: int, kinds: Iterable[str], allowed_domains: frozenset[str] = frozenset()) -> list[Observed]:
    """`observe` for each (account id, material, record) in turn, in one call to the index (one
    Redis round trip for a whole stream batch instead of one per account)."""
    wanted = set(kinds)
    prints = [[fp for post in material.posts for fp in fingerprints(post, allowed_domains) if fp.kind in wanted]
              for _, material, _ in accounts]
    observations = [Observation(account_id, list(dict.fromkeys(f"{fp.kind}:{fp.key}" for fp in found)), record)
                    for (account_id, _, record), found in zip(accounts, prints) if found]
    counted = iter(index.observe_many(observations, now.timestamp(), window) if observations else [])
    return [_waves_of(account_id, found, next(counted), min_accounts) if found else NOTHING
            for (account_id, _, _), found in zip(accounts, prints)]


def _waves_of(account_id: str, prints: list[Fingerprint], counts: Counts, min_accounts: int) -> Observed:
    best: dict[tuple[str, str | None], WaveMatch] = {}
    earlier: dict[str, None] = {}
    active = []
    for fp in prints:
        size, newly = counts.get(f"{fp.kind}:{fp.key}", (0, []))
        if size >= min_accounts:
            active.append(f"{fp.kind}:{fp.key}")
            if size == min_accounts:  # this account completed the wave: the others were scored without it
                earlier.update(dict.fromkeys(member for member in newly if member != account_id))
            match = WaveMatch(fp.kind, fp.status_id, size, fp.sample)
            current = best.get((fp.kind, fp.status_id))
            if current is None or current.accounts < size:
                best[(fp.kind, fp.status_id)] = match
    return Observed(tuple(best.values()), tuple(earlier), tuple(dict.fromkeys(active)))


class MemoryWaves:
    """The index in a dict: for `modwatch eval` and tests."""

    def __init__(self) -> None:
        self.members: dict[str, dict[str, float]] = {}

    def observe_many(self, observations: list[Observation], at: float, window: int) -> list[Counts]:
        return [self._observe(observation, at, window) for observation in observations]

    def _observe(self, observation: Observation, at: float, window: int) -> Counts:
        out = {}
        for key in observation.keys:
            members = self.members.setdefault(key, {})
            for member, seen in list(members.items()):
                if seen < at - window:
                    del members[member]
            before = len(members)
            if observation.record and observation.account_id not in members:
                members[observation.account_id] = at
            out[key] = (len(members), list(members) if len(members) > before else [])
        return out


# The whole batch in one script, so each observation sees the ones before it exactly as separate
# calls would, in one round trip; and the members of a key are read (ZRANGE) only when the
# observation added its account, which a pipeline could not decide on the server.
# KEYS: every observation's keys in turn. ARGV: at, at - window, window, MAX_MEMBERS, then per
# observation: account id, "1" to record or "0", its number of keys. Reply per key: size, members.
_OBSERVE_SCRIPT = """
local at, oldest, window, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local out, k = {}, 1
for a = 5, #ARGV, 3 do
  local account, record, n = ARGV[a], ARGV[a + 1] == '1', tonumber(ARGV[a + 2])
  for i = k, k + n - 1 do
    local key = KEYS[i]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', oldest)
    local added = 0
    if record then
      added = redis.call('ZADD', key, 'NX', at, account)
      redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
      redis.call('EXPIRE', key, window)
    end
    out[#out + 1] = redis.call('ZCARD', key)
    out[#out + 1] = added == 1 and redis.call('ZRANGE', key, 0, -1) or {}
  end
  k = k + n
end
return out
"""


class RedisWaves:
    """The index in Redis, shared by every worker; see the module docstring for its bounds."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self._script = connection.register_script(_OBSERVE_SCRIPT)

    def observe_many(self, observations: list[Observation], at: float, window: int) -> list[Counts]:
        out: list[Counts] = []
        for chunk in _chunks(observations, SCRIPT_MAX_KEYS):
            keys = [KEY_PREFIX + key for observation in chunk for key in observation.keys]
            args: list[str | int] = [repr(at), repr(at - window), window, MAX_MEMBERS]
            for observation in chunk:
                args += [observation.account_id, "1" if observation.record else "0", len(observation.keys)]
            replies = iter(self._script(keys=keys, args=args) if keys else [])
            out += [{key: (next(replies), [member.decode() for member in next(replies)]) for key in observation.keys}
                    for observation in chunk]
        return out


def _chunks(observations: list[Observation], max_keys: int) -> list[list[Observation]]:
    """Consecutive runs of whole observations with at most `max_keys` keys each (an observation with
    more goes alone)."""
    chunks: list[list[Observation]] = []
    size = max_keys
    for observation in observations:
        if size + len(observation.keys) > max_keys:
            chunks.append([])
            size = 0
        chunks[-1].append(observation)
        size += len(observation.keys)
    return chunks


def mark_active(connection, keys: Iterable[str], at: float, window: int) -> int:
    """Remember the fingerprints now forming waves (for the active-waves gauge); how many are active."""
    keys = list(keys)
    with connection.pipeline(transaction=False) as pipe:
        if keys:
            pipe.zadd(ACTIVE_KEY, {key: at for key in keys})
        pipe.zremrangebyscore(ACTIVE_KEY, "-inf", at - window)
        pipe.zcard(ACTIVE_KEY)
        pipe.expire(ACTIVE_KEY, window)
        return pipe.execute()[-2]
