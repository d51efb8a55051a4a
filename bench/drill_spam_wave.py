"""Drill: one simulated hour of a spam wave against Mastodon's real limits.

    python bench/drill_spam_wave.py [--minutes 60] [--accounts 1000] [--redis redis://127.0.0.1:6379/6]

modwatch's own code (flows, polling, the report path, the rate-limit gate, the client, Mastodon.py)
runs against the simulator over HTTP with Mastodon's default limits: 300 requests per 5 minutes
per token, 300 paging requests per 15 minutes per user, 400 reports per account per day. Time is
virtual: the gate, the report path and the simulator read one clock the drill advances second by
second (every other clock in the process is left alone). The process is the drill's own: it
rebinds those clocks for good.

What happens in the hour (starting 23:20 UTC, so the report window turns at 00:00 mid-drill):

- a background population of remote and local accounts (the simulator's seeded patterns, some
  spammy) that the polls sweep, every 30 s for each origin, 5 pages a run at most;
- a spam wave for the first 30 minutes: a new remote spam account every 10 s with two posts
  (found by polling), a new local one every 30 s with three posts, a `status.created` webhook each;
- a moderator paging in the web UI with the same user: one page every 20 s;
- the day's report budget mostly spent already (330 of 400 filed by moderators before 23:20).

It prints reports filed, decisions waiting, requests per family, 429s (modwatch's and the
moderator's), waits per family, duplicates and lost decisions. Targets: zero 429s, no work paused
by another family's limit, no duplicate, nothing lost.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "service"))

SPAM_POSTS = (
    "Huge crypto giveaway! Send 0.1 BTC to bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh and whatsapp me",
    "Another crypto giveaway today, guaranteed returns, whatsapp me now",
    "Free followers and crypto giveaway, limited offer, whatsapp me",
)
MODERATOR_TOKEN = "drill-moderator-web"
PRESPENT_REPORTS = 330


class Clock:
    """The drill's one clock, in unix seconds."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, timezone.utc)


@dataclass
class Tally:
    """What the simulator saw, per family: modwatch's requests and 429s, the moderator's."""

    requests: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    moderator: Counter = field(default_factory=Counter)
    gate_waits: Counter = field(default_factory=Counter)  # (kind of work, family that refused)


def start_of_drill(now: float) -> float:
    """23:20 UTC of a day ahead of the real clock (Redis expiries the code sets must lie in the future)."""
    day = now - now % 86_400 + 86_400
    return day + 23 * 3600 + 20 * 60


def install_clock(clock: Clock, sim_app, tally: Tally) -> None:
    """Point the gate, the report path, the client's reading of answers and the simulator at the drill's clock."""
    from modwatch.mastodon import client as client_module
    from modwatch.moderation import ratelimit, reports
    from modwatch.simulator import ratelimit as sim_ratelimit

    class VirtualDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock.datetime() if tz else clock.datetime().replace(tzinfo=None)

    ratelimit.time = SimpleNamespace(time=clock.time)
    reports._now = clock.datetime
    client_module.server_time = lambda response: clock.datetime()
    sim_app.datetime = VirtualDatetime

    # Count what the simulator's throttles see, by family.
    hit = sim_ratelimit.Limits.hit

    def counted_hit(self, caller, now):
        verdict = hit(self, caller, now)
        who = tally.moderator if caller.token == MODERATOR_TOKEN else None
        families = ["global", "user"] + (["paging"] if caller.paging else [])
        for family in families:
            (who if who is not None else tally.requests)[family] += 1
        if not verdict.allowed:
            name = {"throttle_per_token_api": "global", "throttle_authenticated_api": "user",
                    "throttle_authenticated_paging": "paging"}.get(verdict.throttle, verdict.throttle)
            (who if who is not None else tally.refused)[f"429 {name}"] += 1
        return verdict

    sim_ratelimit.Limits.hit = counted_hit
    record = sim_ratelimit.FixedWindow.record

    def counted_record(self, key, now):
        verdict = record(self, key, now)
        tally.requests["reports"] += 1
        if not verdict.allowed:
            tally.refused["429 reports"] += 1
        return verdict

    sim_ratelimit.FixedWindow.record = counted_record

    for name in ("acquire", "acquire_page", "acquire_report"):
        original = getattr(ratelimit, name)

        def gated(*args, _original=original, _name=name, **kwargs):
            wait = _original(*args, **kwargs)
            if wait is not None:
                tally.gate_waits[(_name.replace("acquire", "analysis") if _name == "acquire" else _name, wait.family)] += 1
            return wait

        setattr(ratelimit, name, gated)


class Jobs:
    """The queue: follow-ups and webhook jobs due at a virtual time, one job per id."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.heap: list[tuple[float, int, str, tuple]] = []
        self.pending: set[str] = set()
        self.seq = 0
        self.outcomes: Counter = Counter()

    def submit(self, follow_ups) -> int:
        count = 0
        for item in follow_ups:
            if item.job_id in self.pending:
                continue
            at = item.at.timestamp() if item.at else self.clock.now
            self.push(at, item.job_id, ("analysis", item.account_id, item.source))
            count += 1
        return count

    def push(self, at: float, job_id: str, work: tuple) -> None:
        self.seq += 1
        self.pending.add(job_id)
        heapq.heappush(self.heap, (at, self.seq, job_id, work))

    def run_due(self) -> None:
        from modwatch.moderation import flows
        from modwatch.moderation.followups import detach

        while self.heap and self.heap[0][0] <= self.clock.now:
            _, _, job_id, work = heapq.heappop(self.heap)
            self.pending.discard(job_id)
            if work[0] == "analysis":
                result = flows.analyze_and_maybe_report(work[1], source=work[2])
            else:
                result = flows.handle_status(work[1])
            self.outcomes[f"{work[0]}: {result.get('outcome')}"] += 1
            self.submit(detach(result))


def drill(minutes: int, accounts: int, redis_url: str, quiet: bool = False) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="modwatch-drill-")
    from modwatch.simulator import app as sim_app
    from modwatch.simulator.server import start_in_thread
    from modwatch.simulator.state import DEFAULT_ADMIN_TOKEN, Token

    real_start = time.time()
    clock = Clock(start_of_drill(real_start))
    tally = Tally()
    install_clock(clock, sim_app, tally)
    sim = start_in_thread(accounts=accounts, seed=11)
    admin = sim.state.tokens[DEFAULT_ADMIN_TOKEN]
    sim.state.tokens[MODERATOR_TOKEN] = Token(MODERATOR_TOKEN, admin.account_id, admin=True)
    # Moderators filed reports with the same account earlier today: Mastodon counts them in its window.
    earlier = clock.datetime() - timedelta(hours=1)
    targets = [a.id for a in sim.state.accounts.values() if a.pattern == "ordinary"]
    for index in range(PRESPENT_REPORTS):
        sim.state.file_report(admin.account_id, targets[index % len(targets)], [], "filed by a moderator", "other",
                              False, None, earlier)
        sim.state.limits.reports.hit(f"account:{admin.account_id}", clock.datetime())
    os.environ.update({
        "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{tmp}/drill.db", "INSTANCE_BASE": sim.base_url,
        "MASTODON_ACCESS_TOKEN": DEFAULT_ADMIN_TOKEN, "DRY_RUN": "false", "PANIC_STOP": "false",
        "LOG_LEVEL": "WARNING", "REPORT_FORWARD": "false",
    })
    from modwatch import connection
    from modwatch.telemetry.logging import configure
    from modwatch.moderation import flows
    from modwatch.settings import get_settings
    from modwatch.storage.db import session_scope, upgrade_database
    from modwatch.storage.models import Report
    from sqlalchemy import func, select

    configure(level="WARNING", fmt="json")
    get_settings.cache_clear()
    connection.reset_pool()
    connection.get_redis().flushdb()
    upgrade_database()
    settings = get_settings()
    jobs = Jobs(clock)
    wave: list[str] = []
    moderator = httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {MODERATOR_TOKEN}"})
    polls: Counter = Counter()
    started = time.monotonic()
    try:
        for second in range(minutes * 60):
            now = clock.datetime()
            if second < 30 * 60 and second % 10 == 0:  # the wave: remote accounts, found by polling
                account = sim.state.add_account(f"wave{second}", "spamfarm.example", now, pattern="wave")
                for text in SPAM_POSTS[:2]:
                    sim.state.add_status(account.id, now, text)
                wave.append(str(account.id))
            if second < 30 * 60 and second % 30 == 5:  # local ones, each post a status.created webhook
                account = sim.state.add_account(f"local{second}", None, now, pattern="wave")
                wave.append(str(account.id))
                for index, text in enumerate(SPAM_POSTS):
                    status = sim.state.add_status(account.id, now, text)
                    with sim.state.lock:
                        from modwatch.simulator import entities
                        body = entities.status(sim.state, status)
                    jobs.push(clock.now + index, f"webhook-{status.id}", ("webhook", body))
            if second % 30 == 0:
                for origin in ("remote", "local"):
                    result = flows.poll_accounts(origin, jobs.submit)
                    polls[f"{origin}: {result.get('outcome')}"] += 1
                    if result.get("held_back_by"):
                        polls[f"held back by {result['held_back_by']}"] += 1
            if second % 20 == 10:  # the moderator pages in the web UI
                answer = moderator.get("/api/v2/admin/accounts", params={"max_id": "999999999999999999999",
                                                                          "limit": 40})
                tally.moderator[f"status {answer.status_code}"] += 1
            if second % settings.report_filing_interval == 0:
                jobs.outcomes[f"file_pending_reports: {flows.file_pending_reports()['outcome']}"] += 1
            jobs.run_due()
            clock.now += 1
            if not quiet and second % 600 == 599:
                print(f"  ... {second // 60 + 1} simulated minutes, {time.monotonic() - started:.0f} s, "
                      f"{len([r for r in sim.state.reports if 'modwatch:' in r.comment])} reports filed",
                      flush=True)
    finally:
        moderator.close()
        sim.stop()
    with session_scope() as session:
        states = dict(session.execute(select(Report.state, func.count()).group_by(Report.state)).all())
        decided_wave = session.scalar(select(func.count(func.distinct(Report.account_id)))
                                      .where(Report.account_id.in_(wave)))
    ours = [r for r in sim.state.reports if r.account_id == admin.account_id and "modwatch:" in r.comment]
    per_target = Counter(r.target_account_id for r in ours)
    result = {
        "virtual_minutes": minutes, "wall_seconds": round(time.monotonic() - started, 1),
        "reports_filed": len(ours), "reports_filed_before_midnight": sum(
            1 for r in ours if r.created_at < datetime.fromtimestamp(start_of_drill(real_start) + 2400, timezone.utc)),
        "decisions": states, "wave_accounts": len(wave), "wave_accounts_decided": decided_wave,
        "duplicates": sum(n - 1 for n in per_target.values() if n > 1),
        "requests_per_family": dict(tally.requests), "modwatch_429s": dict(tally.refused),
        "moderator": dict(tally.moderator),
        "gate_waits": {f"{kind} <- {family}": n for (kind, family), n in sorted(tally.gate_waits.items())},
        "paused_by_another_family": sum(n for (kind, family), n in tally.gate_waits.items()
                                        if (kind == "analysis" and family not in ("global", "user"))
                                        or (kind == "acquire_page" and family == "reports")),
        "jobs": dict(jobs.outcomes), "polls": dict(polls),
        "lost": states.get("failed", 0),
    }
    if not quiet:
        print_result(result)
    return result


def print_result(result: dict[str, Any]) -> None:
    print(f"spam-wave drill: {result['virtual_minutes']} simulated minutes in {result['wall_seconds']} s")
    for key in ("reports_filed", "reports_filed_before_midnight", "decisions", "wave_accounts", "wave_accounts_decided",
                "duplicates", "lost", "requests_per_family", "modwatch_429s", "moderator", "gate_waits",
                "paused_by_another_family", "polls", "jobs"):
        print(f"  {key:32} {result[key]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    result = drill(args.minutes, args.accounts, args.redis, quiet=args.json)
    if args.json:
        print(json.dumps(result, default=str))
    met = not result["modwatch_429s"] and not result["duplicates"] and not result["paused_by_another_family"] \
        and not result["lost"]
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
