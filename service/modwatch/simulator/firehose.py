"""The federated firehose: posts arriving at a steady rate, with a spam mix, edits, deletes and waves.

A thread makes `rate` posts a second (mostly by remote accounts, as on a real federated timeline),
each published on the streaming API as it is made and kept in the state, so the timelines API can
fill a gap. A spam wave is what hit Mastodon in February 2024: freshly created accounts on one
remote server, a few posts each, an image without alt text, an invite link, two mentions.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone

from modwatch.simulator.population import FIRST_NAMES, ORDINARY_TEXTS, REMOTE_DOMAINS, SPAM_KEYWORDS
from modwatch.simulator.state import SimState

WAVE_DOMAIN = "wave.example"
WAVE_TEXT = ("Huge crypto giveaway for the first 100 followers! Claim yours at "
             '<a href="https://bit.ly/{code}">bit.ly/{code}</a> and join t.me/freecoins{code} '
             '<span class="h-card"><a href="https://{domain}/@{first}" class="u-url mention">@<span>{first}</span></a></span> '
             '<span class="h-card"><a href="https://{domain}/@{second}" class="u-url mention">@<span>{second}</span></a></span>')
BIOS = ("Gardener, reader, occasional cyclist.", "Software person. Opinions my own.", "Birds, maps and tea.",
        "Teacher by day, drummer by night.", "Photography and long walks.", "Open source, open data, open minds.")
# Background spam: the kind a keyword list partly catches, one post at a time.
SPAM_TEXTS = tuple(f"Join the {keyword} now! Only today." for keyword in SPAM_KEYWORDS)
AUTHORS = 400  # ordinary authors the firehose starts with; more join as it runs
# A federated timeline is many authors posting a few times an hour: a quarter of the posts come
# from an author not seen before, so after N posts there are about N/4 authors, early ones with more.
NEW_AUTHOR_SHARE = 0.25
MAX_TICK_POSTS = 5000
TICK_SECONDS = 0.01


@dataclass
class Firehose:
    rate: float = 0.0  # posts per second; 0 stops
    spam_ratio: float = 0.02
    remote_share: float = 0.9
    edit_ratio: float = 0.01
    delete_ratio: float = 0.01
    wave_every: float = 0.0  # seconds between automatic waves; 0: only on request
    wave_accounts: int = 20
    wave_posts: int = 2
    made: int = 0
    waves: int = 0
    _started: float = field(default_factory=time.monotonic, repr=False)
    _due_base: int = field(default=0, repr=False)

    def validate(self) -> None:
        for name in ("spam_ratio", "remote_share", "edit_ratio", "delete_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("rate", "wave_every", "wave_accounts", "wave_posts"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


SETTABLE = tuple(f.name for f in fields(Firehose) if not f.name.startswith("_") and f.name not in {"made", "waves"})


def configure(state: SimState, **changes) -> Firehose:
    """Change the firehose (start its thread on first use); the rate counts from now."""
    unknown = set(changes) - set(SETTABLE)
    if unknown:
        raise ValueError(f"unknown firehose setting {sorted(unknown)[0]!r}; known: {', '.join(SETTABLE)}")
    with state.lock:
        hose = state.firehose or Firehose()
        candidate = Firehose(**{**{k: getattr(hose, k) for k in SETTABLE}, **{k: type(getattr(hose, k))(v) for k, v in changes.items()}})
        candidate.validate()
        for name in SETTABLE:
            setattr(hose, name, getattr(candidate, name))
        hose._started, hose._due_base = time.monotonic(), hose.made
        if state.firehose is None:
            state.firehose = hose
            threading.Thread(target=_run, args=(state, hose), daemon=True, name="firehose").start()
    return hose


def _run(state: SimState, hose: Firehose) -> None:
    rng = random.Random(state.config.seed + 1)
    authors: list[int] = []
    spammers: list[int] = []
    last_wave = time.monotonic()
    while True:
        time.sleep(TICK_SECONDS)
        now = time.monotonic()
        due = min(int((now - hose._started) * hose.rate) + hose._due_base - hose.made, MAX_TICK_POSTS)
        if hose.wave_every and now - last_wave >= hose.wave_every:
            last_wave = now
            with state.lock:
                wave(state, hose.wave_accounts, hose.wave_posts, rng=rng)
                hose.waves += 1
        if due <= 0:
            continue
        with state.lock:
            at = datetime.now(timezone.utc)
            if not authors:
                authors.extend(_new_author(state, rng, hose, at) for _ in range(AUTHORS))
            for _ in range(due):
                _one(state, rng, hose, authors, spammers, at)
                hose.made += 1


def _new_author(state: SimState, rng: random.Random, hose: Firehose, at: datetime, pattern: str = "firehose") -> int:
    """An author new to the firehose: people have had their accounts for months or years; spammers since today."""
    domain = rng.choice(REMOTE_DOMAINS) if rng.random() < hose.remote_share else None
    name = f"{rng.choice(FIRST_NAMES)}{len(state.accounts)}"
    if pattern == "firehose_spam":
        return state.add_account(name, domain, at, display_name=name.title(), pattern=pattern).id
    return state.add_account(name, domain, at - timedelta(days=rng.uniform(30, 2000)), display_name=name.title(),
                             note=f"<p>{rng.choice(BIOS)}</p>", pattern=pattern).id


def _one(state: SimState, rng: random.Random, hose: Firehose, authors: list[int], spammers: list[int],
         at: datetime) -> None:
    roll = rng.random()
    if roll < hose.delete_ratio and state.timeline:
        state.delete_status(state.timeline[-1 - rng.randrange(min(len(state.timeline), 50))])
        return
    roll -= hose.delete_ratio
    if roll < hose.edit_ratio and state.timeline:
        target = state.timeline[-1 - rng.randrange(min(len(state.timeline), 50))]
        if target in state.statuses:
            state.edit_status(target, state.statuses[target].text + " (edited)", at)
            return
    if rng.random() < hose.spam_ratio:
        if not spammers or rng.random() < 0.2:
            spammers.append(_new_author(state, rng, hose, at, pattern="firehose_spam"))
        state.add_status(rng.choice(spammers), at, rng.choice(SPAM_TEXTS))
        return
    if rng.random() < NEW_AUTHOR_SHARE:
        authors.append(_new_author(state, rng, hose, at))
    media = ["A photo of the view described in the post."] if rng.random() < 0.1 else []
    state.add_status(rng.choice(authors), at, rng.choice(ORDINARY_TEXTS), media_descriptions=media)


def wave(state: SimState, accounts: int, posts: int, domain: str = WAVE_DOMAIN,
         rng: random.Random | None = None) -> list[int]:
    """`accounts` fresh accounts on `domain`, each posting `posts` wave posts now; their ids."""
    rng = rng or random.Random(len(state.accounts))
    at = datetime.now(timezone.utc)
    made = []
    with state.lock:
        for _ in range(accounts):
            username = f"{rng.choice(FIRST_NAMES)}_{rng.randrange(16**6):06x}"
            made.append(state.add_account(username, domain, at, display_name=username, pattern="wave").id)
        for account_id in made:
            for _ in range(posts):
                first, second = rng.sample(FIRST_NAMES, 2)
                text = WAVE_TEXT.format(code=f"{rng.randrange(16**5):05x}", domain=rng.choice(REMOTE_DOMAINS),
                                        first=first, second=second)
                state.add_status(account_id, at, f"<p>{text}</p>", media_descriptions=[None])
    return made
