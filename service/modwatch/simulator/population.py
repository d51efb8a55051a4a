"""A seeded population: ordinary people plus the spam and abuse patterns modwatch should catch.

Everything is drawn from one `random.Random(seed)`, and times are offsets from the start time, so
the same seed and start time give the same world, ids included.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modwatch.simulator.state import Account, SimState

REMOTE_DOMAINS = ("mastodon.example", "fosstodon.example", "social.example")
SPAM_FARM_DOMAIN = "spamfarm.example"
LINK_SPAM_DOMAIN = "cheap-deals.example"
# Phrases spam really uses, in the default rules' vocabularies ("Join the {keyword} now!").
SPAM_KEYWORDS = ("crypto giveaway", "bitcoin giveaway", "slot gacor maxwin", "guaranteed profit club", "smm panel")

ORDINARY_TEXTS = (
    "Morning walk by the river, the herons are back.",
    "Finally fixed that flaky test. It was a timezone, of course.",
    "Does anyone have a good recipe for lentil soup?",
    "Reading a book about the history of maps. Recommended.",
    "Our community garden needs volunteers this weekend.",
    "New blog post about self-hosting a small Mastodon server.",
    "The train was late again, but the view made up for it.",
    "Rewatched an old favourite film tonight.",
    "Learning to knit. Progress is slow but steady.",
    "Photos from the mountain trip are up.",
)
# People do not post the same words as each other: ordinary posts are put together from these, so
# that several new accounts posting at once are not mistaken for a spam wave.
OPENERS = ("Morning walk by the river.", "Finally fixed that flaky test.", "Lentil soup for dinner again.",
           "Reading a book about the history of maps.", "The community garden needs volunteers.",
           "The train was late again.", "Rewatched an old favourite film.", "Learning to knit.",
           "Photos from the mountain trip are up.", "New blog post about self-hosting.", "Rain all day here.",
           "Our cat learned to open doors.", "Spent the afternoon fixing my bike.", "First snow of the year!")
DETAILS = ("The herons are back", "It was a timezone, of course", "Anyone have a better recipe?", "Recommended",
           "Bring gloves if you come", "The view made up for it", "Still holds up", "Progress is slow but steady",
           "Link in the next post", "Took me three evenings", "Perfect weather for tea", "Send help",
           "The chain was the culprit", "The kids are thrilled")
ENDINGS = ("", "", "🙂", "Happy Sunday.", "More later.", "What are you up to?", "Long week.", "#photography",
           "#cooking", "#cycling", "Good night, everyone.")


PLACES = ("in Leeds", "near Lyon", "at the lake", "in the old town", "at my parents'", "downtown", "on the coast",
          "in the hills", "at the office", "in Kiel", "at the market", "by the harbour", "in the park", "at home")


def ordinary_text(rng: random.Random) -> str:
    opener = rng.choice(OPENERS).rstrip(".!")
    parts = (f"{opener} {rng.choice(PLACES)}{rng.choice('.!')}", rng.choice(DETAILS) + ".", rng.choice(ENDINGS))
    return " ".join(part for part in parts if part)


FIRST_NAMES = ("alex", "sam", "robin", "kim", "jo", "max", "lee", "noa", "ari", "mika", "pat", "eli")

# Share of the seeded accounts per pattern; the rest are ordinary.
PATTERN_SHARES = (
    ("keyword_spam", 0.08),
    ("link_spam", 0.06),
    ("duplicate_burst", 0.05),
    ("missing_alt_text", 0.08),
)
NEW_ACCOUNT_BURST = 8


class Population:
    def __init__(self, state: SimState, rng: random.Random):
        self.state = state
        self.rng = rng
        self.serial = 0

    def seed(self, count: int, now: datetime) -> None:
        """Create `count` accounts over the last 30 days, then one burst of fresh sign-ups."""
        burst = min(NEW_ACCOUNT_BURST, count // 10)
        patterns = []
        for pattern, share in PATTERN_SHARES:
            patterns += [pattern] * int((count - burst) * share)
        patterns += ["ordinary"] * (count - burst - len(patterns))
        self.rng.shuffle(patterns)
        start = now - timedelta(days=30)
        step = (timedelta(days=29) / max(len(patterns), 1))
        planned: list[tuple] = []
        for index, pattern in enumerate(patterns):
            planned += self.account(pattern, start + step * index, now, post=False)
        burst_start = now - timedelta(minutes=20)
        for index in range(burst):
            planned += self.account("new_account_burst", burst_start + timedelta(seconds=40 * index), now, post=False)
        # Posted in time order so that status ids grow with time, as snowflakes do.
        for account_id, at, text, media in sorted(planned, key=lambda p: p[1]):
            self.state.add_status(account_id, at, text, media_descriptions=media)

    def grow(self, now: datetime) -> None:
        """One arrival: a new account (every third time) or a new post by an existing one."""
        self.serial += 1
        if self.serial % 3 == 0 or not self.state.statuses:
            pattern = self.rng.choice(["ordinary"] * 6 + [name for name, _ in PATTERN_SHARES])
            self.account(pattern, now, now)
            return
        authors = sorted(a.id for a in self.state.accounts.values() if a.pattern not in {"staff"})
        author = self.state.accounts[self.rng.choice(authors)]
        self.state.add_status(author.id, now, ordinary_text(self.rng))

    def account(self, pattern: str, created_at: datetime, now: datetime, post: bool = True) -> list[tuple]:
        """Create an account; its posts are made now (`post`) or returned as (account id, time, text, media)."""
        self.serial += 1
        domain = self._domain(pattern)
        name = self.rng.choice(FIRST_NAMES)
        if pattern == "new_account_burst":
            username = f"promo_{self.serial:04d}"
        elif pattern in {"keyword_spam", "link_spam"}:
            username = f"{name}_deals{self.serial}"
        else:
            username = f"{name}{self.serial}"
        account = self.state.add_account(
            username, domain, created_at, display_name=username.replace("_", " ").title(),
            note="<p>Best offers every day!</p>" if pattern != "ordinary" and pattern != "missing_alt_text" else "",
            bot=pattern == "new_account_burst", locale="en" if domain is None else None, pattern=pattern,
            moderation=self.rng.choice(["active"] * 18 + ["silenced", "suspended"]) if pattern == "ordinary" else "active",
        )
        planned = self._posts(account, pattern, created_at, now)
        if post:
            for account_id, at, text, media in planned:
                self.state.add_status(account_id, at, text, media_descriptions=media)
            return []
        return planned

    def _domain(self, pattern: str) -> str | None:
        if pattern == "new_account_burst":
            return SPAM_FARM_DOMAIN
        if self.rng.random() < 0.4:
            return self.rng.choice(REMOTE_DOMAINS)
        return None

    def _posts(self, account: Account, pattern: str, created_at: datetime, now: datetime) -> list[tuple]:
        planned = []
        span = (now - created_at).total_seconds()
        times = sorted(created_at + timedelta(seconds=self.rng.uniform(0, span * 0.9)) for _ in range(self.rng.randint(1, 5)))
        for index, at in enumerate(times):
            media: list[str | None] = []
            text = ordinary_text(self.rng)
            if pattern == "keyword_spam":
                text = f"Join the {self.rng.choice(SPAM_KEYWORDS)} now! Only today."
            elif pattern == "link_spam":
                text = (f'Huge discounts: <a href="https://{LINK_SPAM_DOMAIN}/p/{self.rng.randint(1, 999)}">'
                        f"https://{LINK_SPAM_DOMAIN}/p</a>")
            elif pattern == "new_account_burst":
                text = f"Follow me for {self.rng.choice(SPAM_KEYWORDS)}!"
            elif pattern == "missing_alt_text":
                media = [None] * self.rng.randint(1, 3)
            elif self.rng.random() < 0.2:
                media = ["A photo of the view described in the post."]
            planned.append((account.id, at, text, media))
            if pattern == "duplicate_burst" and index == 0:
                # The same text several times within a few minutes.
                burst_text = "Check out my new channel, link in bio!"
                for repeat in range(self.rng.randint(5, 8)):
                    planned.append((account.id, min(at + timedelta(seconds=20 * (repeat + 1)), now), burst_text, []))
        return planned
