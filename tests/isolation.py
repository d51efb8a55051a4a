"""What every test area shares: a modwatch environment of its own (Redis database, SQLite file), free ports
and waiting for what other processes do."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import httpx
import redis

from modwatch import connection
from modwatch.settings import get_settings
from modwatch.storage import db

T = TypeVar("T")

# The suite's Redis server and PostgreSQL database. The defaults are the services CI starts; another Redis
# (MODWATCH_TEST_REDIS=redis://127.0.0.1:6390) or database lets two checkouts run the suite side by side.
TEST_REDIS = os.environ.get("MODWATCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
TEST_POSTGRES = os.environ.get("MODWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# The recorded Mastodon answers (cassettes), webhook deliveries and documentation examples the tests replay
# live outside the repository, in `mastodon/` of the shared recordings: MODWATCH_SHARED_DIR, else `shared/`
# beside the checkout. CI names the directory, so there missing recordings fail instead of skipping.
SHARED_DIR = Path(os.environ.get("MODWATCH_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
REQUIRE_SHARED = bool(os.environ.get("MODWATCH_SHARED_DIR"))


class RecordingsMissing(LookupError):
    pass


def find_mastodon_recordings() -> Path:
    """`mastodon/` of the shared recordings; RecordingsMissing, saying where it looked, when it is not there."""
    recordings = SHARED_DIR / "mastodon"
    if not (recordings / "cassettes").is_dir():
        raise RecordingsMissing(f"no recorded Mastodon answers at {recordings} (cassettes/, webhooks/, docs-examples/); "
                                "set MODWATCH_SHARED_DIR to the directory that holds mastodon/")
    return recordings


def mastodon_recordings() -> Path:
    """find_mastodon_recordings() for a test: without the recordings the calling test (or, called at import,
    the module) is skipped with the reason, or fails when MODWATCH_SHARED_DIR named the place."""
    import pytest

    try:
        return find_mastodon_recordings()
    except RecordingsMissing as missing:
        if REQUIRE_SHARED:
            pytest.fail(str(missing), pytrace=False)
        pytest.skip(str(missing), allow_module_level=True)


# CI sets this: there a PostgreSQL test without a server fails instead of skipping.
REQUIRE_POSTGRES = os.environ.get("MODWATCH_REQUIRE_POSTGRES", "").strip().lower() in ("1", "true", "yes")
_postgres_answer: list[str | None] = []


def postgres_or_skip() -> str:
    """TEST_POSTGRES, when a server answers there; otherwise the calling test is skipped, saying why
    (or fails, with MODWATCH_REQUIRE_POSTGRES=1 as in CI). Asked once per test session."""
    import pytest
    from sqlalchemy import create_engine, text

    if not _postgres_answer:
        engine = create_engine(TEST_POSTGRES, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            _postgres_answer.append(None)
        except Exception as error:  # any reason the server cannot be used is a reason to skip
            _postgres_answer.append(f"no PostgreSQL at {TEST_POSTGRES} ({type(error).__name__}); "
                                    "set MODWATCH_TEST_POSTGRES to run the PostgreSQL tests")
        finally:
            engine.dispose()
    reason = _postgres_answer[0]
    if reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(reason)
        pytest.skip(reason)
    return TEST_POSTGRES


@contextlib.contextmanager
def postgres_schema(name: str) -> Iterator[Callable[..., str]]:
    """A schema of the test's own in TEST_POSTGRES (made empty, dropped after); yields `url(*settings)`, the
    database URL that works in it, with extra server settings such as "default_transaction_read_only=on"."""
    from sqlalchemy import create_engine, text

    admin = create_engine(postgres_or_skip(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {name}"))

    def url(*settings: str) -> str:
        options = "%20".join(f"-c{setting}".replace("=", "%3D") for setting in (f"search_path={name}", *settings))
        return f"{TEST_POSTGRES}?options={options}"

    try:
        yield url
    finally:
        db.dispose_engine()
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()


def redis_db_url(db: int) -> str:
    """The URL of database `db` of the suite's Redis; db 0 is where a shared Redis keeps its users' data."""
    if db == 0:
        raise ValueError("tests never use Redis database 0")
    return f"{TEST_REDIS}/{db}"


# Databases this test run has found empty and may therefore empty again.
_claimed_redis: set[str] = set()


def claimed_redis_db(url: str) -> redis.Redis:
    """A client of the Redis database `url`, emptied for the test. The first time a run uses a database it must
    find it empty: the suite never wipes keys it did not write (another user's data on a shared Redis)."""
    import pytest

    database = redis.Redis.from_url(url)
    if url not in _claimed_redis:
        found = database.dbsize()
        if found:
            pytest.fail(f"Redis database {url} holds {found} keys this test run did not write: the suite will not "
                        "wipe them. Point MODWATCH_TEST_REDIS at a Redis for tests, or, if they are a killed test "
                        f"run's leftovers, empty it (redis-cli -u {url} flushdb).", pytrace=False)
        _claimed_redis.add(url)
    database.flushdb()
    return database

# Settings a test must never inherit from the shell that runs it.
NOT_INHERITED = (
    "INSTANCE_BASE", "MASTODON_ACCESS_TOKEN", "DRY_RUN", "PANIC_STOP", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER",
)


def reset_caches() -> None:
    """Forget cached settings, the Redis pool and the database engine after the environment changed."""
    get_settings.cache_clear()
    connection.reset_pool()
    db.dispose_engine()


def free_port() -> int:
    """A local TCP port nothing listens on right now, for a process the test starts next."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.1, *,
             ignoring: tuple[type[Exception], ...] = ()) -> T:
    """Poll `condition` until it returns something truthy and return that; fail naming `what`, the timeout and
    the last answer. Exceptions of the `ignoring` types count as "not yet" (a server that is still starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            last = condition()
            if last:
                return last
        except ignoring as error:
            last = error
        # Checked after asking: the last ask comes at or past the deadline, not a sleep short of it.
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last answer: {last!r}")
        time.sleep(interval)


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until `url` answers below 500; fail at once if `process`, which serves it, exits."""
    def answers() -> bool:
        assert process.poll() is None, f"process for {url} exited with {process.returncode}"
        return httpx.get(url, timeout=1).status_code < 500

    wait_for(answers, url, timeout, ignoring=(httpx.HTTPError,))
