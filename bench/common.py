"""What every benchmark shares: its Redis database, child process environments, a local OTLP
receiver, Redis command counting and the result row."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
REDIS_DB = 6
REDIS_URL = os.environ.get("BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{REDIS_DB}")
API_KEY = "bench-api-key"
WEBHOOK_SECRET = "bench-webhook-secret"


@dataclass
class Row:
    """One line of the results table: the figure, its baseline and the ratio the target is about."""

    name: str
    measured: str
    baseline: str
    ratio: float
    target: str
    met: bool
    notes: list[str] = field(default_factory=list)


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def flush() -> None:
    redis_client().flushdb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a modwatch process under benchmark (bench/ importable for the job functions)."""
    env = dict(os.environ)
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "INSTANCE_BASE",
                 "MASTODON_ACCESS_TOKEN", "DRY_RUN", "PANIC_STOP"):
        env.pop(name, None)
    env.update({
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": f"sqlite:///{tmp}/modwatch.db",
        "API_KEY": API_KEY,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "METRICS_PORT": "0",
        "LOG_FORMAT": "json",
        # As deployed (Dockerfile): every line written when it is logged. Without it, bare RQ's
        # lines, on stdout, sit in an 8 KiB buffer while modwatch's, on stderr, are written one by one.
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(BENCH), env.get("PYTHONPATH", "")]),
    })
    env.update(extra)
    return env


def use_env(env: dict[str, str]) -> None:
    """Point this process's settings, Redis pool and database at `env`."""
    from modwatch import connection
    from modwatch.settings import get_settings
    from modwatch.storage import db

    os.environ.update(env)
    get_settings.cache_clear()
    connection.reset_pool()
    db.dispose_engine()


class OtlpReceiver:
    """A local OTLP/HTTP endpoint (`otlp_sink.py`) in its own process: receiving spans must not take
    the GIL of the process under measurement, or of the load generator."""

    def __enter__(self) -> OtlpReceiver:
        self.process = subprocess.Popen(python(str(BENCH / "otlp_sink.py")), stdout=subprocess.PIPE, text=True)
        self.endpoint = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.process)

    @property
    def requests(self) -> int:
        import httpx

        return httpx.get(f"{self.endpoint}/stats", timeout=10).json()["requests"]


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats)."""
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}


def commands_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Commands run between two `command_calls` readings, without the INFO of the readings themselves."""
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    delta["info"] = delta.get("info", 0) - 1
    return {name: calls for name, calls in delta.items() if calls > 0}


def best_seconds(function, repeat: int) -> float:
    """The fastest of `repeat` runs: on a shared machine, interference only ever adds time."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
