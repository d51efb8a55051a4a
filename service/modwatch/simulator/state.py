"""The simulator's in-memory world: accounts, statuses, reports, tokens, limits and faults.

One `SimState` per simulator; every mutation happens under its lock because uvicorn runs
sync endpoints on a thread pool.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from modwatch.simulator.faults import Faults
from modwatch.simulator.ratelimit import Limits

if TYPE_CHECKING:
    from modwatch.simulator.firehose import Firehose
    from modwatch.simulator.stream import StreamHub

DEFAULT_ADMIN_TOKEN = "sim-admin-token"
DEFAULT_USER_TOKEN = "sim-user-token"
LOCAL_DOMAIN = "sim.modwatch.test"


@dataclass
class Account:
    id: int
    username: str
    domain: str | None
    created_at: datetime
    display_name: str = ""
    note: str = ""
    bot: bool = False
    locale: str | None = "en"
    moderation: str = "active"  # active, silenced, suspended, pending, disabled
    role: str | None = None  # "Owner" for the simulator's own admin
    pattern: str = "ordinary"  # ground truth for tests: which seeded pattern made it

    @property
    def acct(self) -> str:
        return self.username if self.domain is None else f"{self.username}@{self.domain}"


@dataclass
class Status:
    id: int
    account_id: int
    created_at: datetime
    text: str
    media_descriptions: list[str | None] = field(default_factory=list)  # one per attachment; None = no alt text
    language: str = "en"
    visibility: str = "public"  # private and direct posts are invisible to a reporter who does not follow
    edited_at: datetime | None = None


@dataclass
class Report:
    id: int
    account_id: int  # who filed it
    target_account_id: int
    status_ids: list[int]
    comment: str
    category: str
    forwarded: bool
    rule_ids: list[int] | None
    created_at: datetime
    action_taken_at: datetime | None = None  # resolved by a moderator


@dataclass
class Rule:
    id: int
    text: str
    hint: str = ""
    discarded: bool = False  # deleted by an admin: no longer listed, still valid in reports (Rule.with_discarded)


@dataclass
class Token:
    value: str
    account_id: int
    admin: bool

    @property
    def scopes(self) -> list[str]:
        return ["read", "write", "admin:read", "admin:write"] if self.admin else ["read", "write"]


@dataclass
class Config:
    seed: int = 1
    accounts: int = 200
    admin_token: str = DEFAULT_ADMIN_TOKEN
    user_token: str = DEFAULT_USER_TOKEN
    ratelimit_limit: int = 300  # per token (throttle_per_token_api)
    ratelimit_period: int = 300
    paging_limit: int = 300  # per user, requests with min_id/max_id/since_id/page (throttle_authenticated_paging)
    paging_period: int = 900
    reports_per_day: int = 400  # per reporting account (RateLimiter reports family)
    growth_per_minute: float = 0.0
    version: str = "4.3.2"
    webhook_target: str | None = None
    webhook_secret: str | None = None
    stream_heartbeat_seconds: float = 15.0


def snowflake(at: datetime) -> int:
    """Mastodon-style id: milliseconds since the epoch in the high bits, 16 low bits free."""
    return int(at.timestamp() * 1000) << 16


class SimState:
    def __init__(self, config: Config | None = None, now: datetime | None = None):
        self.config = config or Config()
        self.lock = threading.RLock()
        # Imported here: the stream renders entities, which build on this module's classes.
        from modwatch.simulator.stream import StreamHub

        # The streaming hub publishes every post made after the seed; the firehose makes posts.
        self.stream: StreamHub | None = StreamHub(self.config.stream_heartbeat_seconds)
        self.firehose: Firehose | None = None
        self.reset(now)

    def reset(self, now: datetime | None = None) -> None:
        # Imported here: population builds on this module's classes.
        from modwatch.simulator.population import Population

        with self.lock:
            self.now = now or datetime.now(timezone.utc)
            self.accounts: dict[int, Account] = {}
            self.statuses: dict[int, Status] = {}
            # Status ids per author, oldest first (ids only grow): rendering an Account counts its
            # statuses, and the stream renders hundreds a second.
            self.by_account: dict[int, list[int]] = {}
            # Every status id ever posted, oldest first, for the public timeline's id cursors.
            self.timeline: list[int] = []
            self.reports: list[Report] = []
            self._last_id = 0
            self.faults = Faults(seed=self.config.seed)
            self.limits = Limits(per_token_limit=self.config.ratelimit_limit,
                                 per_token_period=self.config.ratelimit_period,
                                 paging_limit=self.config.paging_limit, paging_period=self.config.paging_period,
                                 reports_per_day=self.config.reports_per_day)
            self.rules: list[Rule] = [Rule(1, "No spam or advertising."), Rule(2, "No harassment or hate speech."),
                                      Rule(3, "Describe media for people who cannot see it.")]
            self.population = Population(self, random.Random(self.config.seed))
            # Staff accounts predate the population so that every id still follows its record's time.
            founded = self.now - timedelta(days=31)
            admin = self.add_account("admin", None, founded, role="Owner", pattern="staff", display_name="Admin")
            user = self.add_account("reporter", None, founded, pattern="staff", display_name="Reporter")
            self.tokens = {
                self.config.admin_token: Token(self.config.admin_token, admin.id, admin=True),
                self.config.user_token: Token(self.config.user_token, user.id, admin=False),
            }
            stream, self.stream = self.stream, None  # the seeded past is not streamed
            self.population.seed(self.config.accounts, self.now)
            self.stream = stream
            self.started = self.now
            self.grown = 0

    def new_id(self, at: datetime) -> int:
        # Strictly increasing even when two records share a millisecond.
        self._last_id = max(snowflake(at), self._last_id + 1)
        return self._last_id

    def add_account(self, username: str, domain: str | None, created_at: datetime, **fields) -> Account:
        with self.lock:
            account = Account(self.new_id(created_at), username, domain, created_at, **fields)
            self.accounts[account.id] = account
            return account

    def add_status(self, account_id: int, created_at: datetime, text: str, **fields) -> Status:
        with self.lock:
            status = Status(self.new_id(created_at), account_id, created_at, text, **fields)
            self.statuses[status.id] = status
            self.by_account.setdefault(account_id, []).append(status.id)
            self.timeline.append(status.id)
            if self.stream is not None:
                self.stream.announce(self, status)
            return status

    def edit_status(self, status_id: int, text: str, at: datetime) -> Status | None:
        with self.lock:
            status = self.statuses.get(status_id)
            if status is None:
                return None
            status.text, status.edited_at = text, at
            if self.stream is not None:
                self.stream.announce(self, status, edited=True)
            return status

    def delete_status(self, status_id: int) -> bool:
        with self.lock:
            status = self.statuses.pop(status_id, None)
            if status is None:
                return False
            self.by_account[status.account_id].remove(status_id)
            if self.stream is not None:
                self.stream.retract(self, status)
            return True

    def remove_account(self, account_id: int) -> bool:
        with self.lock:
            if self.accounts.pop(account_id, None) is None:
                return False
            for status_id in self.by_account.pop(account_id, []):
                del self.statuses[status_id]
            return True

    def visible_to_reporter(self, status: Status) -> bool:
        """AccountStatusesFilter for a local reporter who follows no one: public and unlisted posts only."""
        return status.visibility in ("public", "unlisted")

    def statuses_of(self, account_id: int) -> list[Status]:
        """Newest first."""
        return [self.statuses[i] for i in reversed(self.by_account.get(account_id, ()))]

    def file_report(self, reporter_id: int, target_id: int, status_ids: list[int], comment: str, category: str,
                    forward: bool, rule_ids: list[int] | None, at: datetime) -> Report:
        with self.lock:
            report = Report(len(self.reports) + 1, reporter_id, target_id, status_ids, comment, category,
                            forward, rule_ids, at)
            self.reports.append(report)
            return report

    def catch_up(self, now: datetime) -> None:
        """Let `growth_per_minute` new records arrive for the time passed since the start."""
        rate = self.config.growth_per_minute
        if rate <= 0:
            return
        with self.lock:
            due = int((now - self.started).total_seconds() / 60 * rate) - self.grown
            for _ in range(max(due, 0)):
                self.population.grow(now)
                self.grown += 1
