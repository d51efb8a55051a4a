"""Fixtures: the simulator as a real HTTP server (recording what it was asked), Redis db 2, a fresh
SQLite database per test, and helpers to add accounts and read the reports the simulator holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest
import redis
import requests

from modwatch.connection import get_redis, reset_pool
from modwatch.settings import Settings, get_settings
from modwatch.simulator import server
from modwatch.simulator.state import DEFAULT_ADMIN_TOKEN
from modwatch.storage.db import dispose_engine, upgrade_database

from isolation import TEST_POSTGRES, claimed_redis_db, postgres_schema, redis_db_url

REDIS_URL = redis_db_url(2)
POSTGRES = TEST_POSTGRES
SCHEMA = "modwatch_moderation_test"
API_KEY = "moderation-test-key"
SPAM_TEXT = (
    "Huge crypto giveaway! Send 0.1 BTC to bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh "
    "and whatsapp me for guaranteed returns"
)
CLEAN_TEXT = "Morning walk by the river, the herons are back."
# Different people write different things: the same text from several new accounts is a wave.
CLEAN_TEXTS = (CLEAN_TEXT, "Finally fixed that flaky test. It was a timezone, of course.",
               "Does anyone have a good recipe for lentil soup?", "Reading a book about the history of maps.",
               "Our community garden needs volunteers this weekend.", "The train was late again, but the view was lovely.",
               "Rewatched an old favourite film tonight.", "Learning to knit. Progress is slow but steady.",
               "Photos from the mountain trip are up.", "Swapped my bike tyres for winter ones today.",
               "Tried a new bakery downtown, the rye bread is excellent.")


class Recorder:
    """ASGI wrapper that notes every request's method, path and query parameters."""

    def __init__(self, app):
        self.app = app
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"], parse_qs(scope["query_string"].decode())))
        await self.app(scope, receive, send)

    def params(self, method: str, path: str) -> list[dict[str, list[str]]]:
        return [query for m, p, query in self.requests if m == method and p.rstrip("/") == path]


@pytest.fixture(scope="session")
def simulator():
    recorders: list[Recorder] = []
    original = server.create_app

    def recorded(state):
        recorders.append(Recorder(original(state)))
        return recorders[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server, "create_app", recorded)
        # A short rate-limit window, so a 429's reset is seconds away; the limit itself is never reached.
        sim = server.start_in_thread(accounts=0, seed=7, ratelimit_limit=100_000, ratelimit_period=2,
                                     paging_limit=100_000)
    sim.recorder = recorders[0]
    yield sim
    sim.stop()


@dataclass
class World:
    sim: server.RunningSimulator
    redis: redis.Redis
    env: dict[str, str]
    accounts: list[str] = field(default_factory=list)
    clean_added: int = 0

    @property
    def settings(self) -> Settings:
        return get_settings()

    @property
    def requests(self) -> Recorder:
        return self.sim.recorder

    def sim_post(self, path: str, body: dict) -> dict:
        response = requests.post(f"{self.sim.base_url}/_sim/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def add_account(self, username: str, texts: list[str], domain: str | None = None, note: str = "") -> str:
        account = self.sim_post("accounts", {"username": username, "domain": domain, "note": note})
        for body in texts:
            self.sim_post("statuses", {"account_id": account["id"], "text": body})
        return account["id"]

    def add_spammer(self, username: str = "deals", domain: str | None = "spam.example") -> str:
        return self.add_account(username, [SPAM_TEXT, "Another crypto giveaway today, whatsapp me"], domain)

    def add_clean(self, username: str = "walker", domain: str | None = None) -> str:
        self.clean_added += 1
        return self.add_account(username, [CLEAN_TEXTS[(self.clean_added - 1) % len(CLEAN_TEXTS)]], domain)

    def filed(self, account_id: str | None = None) -> list[dict]:
        reports = requests.get(f"{self.sim.base_url}/_sim/reports", timeout=10).json()
        return [r for r in reports if account_id is None or r["target_account"]["id"] == account_id]

    def faults(self, **changes) -> None:
        self.sim_post("faults", changes)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Every pipeline test runs on SQLite and on PostgreSQL (in a schema of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'modwatch.db'}"
        return
    with postgres_schema(SCHEMA) as url:
        yield url()


@pytest.fixture
def world(simulator, database_url, monkeypatch):
    requests.post(f"{simulator.base_url}/_sim/reset", timeout=10).raise_for_status()
    simulator.recorder.requests.clear()
    env = {
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": database_url,
        "INSTANCE_BASE": simulator.base_url,
        "MASTODON_ACCESS_TOKEN": DEFAULT_ADMIN_TOKEN,
        "API_KEY": API_KEY,
        "DRY_RUN": "false",
        "PANIC_STOP": "false",
        "REPORT_FORWARD": "true",
        "POLL_MAX_PAGES": "5",
        "METRICS_PORT": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _forget_process_state()
    connection = claimed_redis_db(REDIS_URL)
    upgrade_database()
    yield World(simulator, connection, env)
    connection.flushdb()
    _forget_process_state()


def _forget_process_state() -> None:
    get_settings.cache_clear()
    reset_pool()
    dispose_engine()


def run_jobs(*queues: str) -> None:
    """Work the queues empty in this process, like a burst worker."""
    from modwatch.jobs.worker import build_worker

    build_worker(get_redis(), queues or ("webhooks", "moderation"), simple=True).work(burst=True)
