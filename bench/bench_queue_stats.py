"""4. `record_queue_stats` and an API `/metrics` scrape at 10, 10,000 and 100,000 queued jobs.

Runs against a private redis-server so INFO commandstats count nothing but these calls. The
figure is the time at the deepest queue against the time at 10 jobs (flat means a ratio near 1),
and the Redis command count, which must not change with depth.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rq import Queue

from common import Row, child_env, command_calls, commands_between, best_seconds, use_env
from private_redis import private_redis

DEPTHS = (10, 10_000, 100_000)
REPEAT = 20
CHUNK = 2000
# "Flat": the deepest queue may cost at most this much more than 10 jobs (timer noise on a busy box).
TARGET = 1.5


def fill_to(queue: Queue, depth: int) -> None:
    missing = depth - queue.count
    while missing > 0:
        batch = min(CHUNK, missing)
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many([Queue.prepare_data("benchjobs.noop") for _ in range(batch)], pipeline=pipe)
            pipe.execute()
        missing -= batch


def measure(function, connection) -> tuple[float, int]:
    function()  # warm
    before = command_calls(connection)
    function()
    commands = sum(commands_between(before, command_calls(connection)).values())
    return best_seconds(function, REPEAT), commands


def run(depths: tuple[int, ...] = DEPTHS) -> list[Row]:
    with private_redis() as url, tempfile.TemporaryDirectory() as tmp:
        use_env(child_env(Path(tmp), REDIS_URL=url))
        from fastapi.testclient import TestClient

        from modwatch.api.app import create_app
        from modwatch.connection import get_redis
        from modwatch.jobs.queues import get_queue
        from modwatch.storage.db import upgrade_database
        from modwatch.telemetry import queue_stats

        upgrade_database()
        connection = get_redis()
        queue = get_queue("webhooks")
        results = {}
        with TestClient(create_app()) as client:
            def scrape() -> None:
                assert client.get("/metrics").status_code == 200

            for depth in depths:
                fill_to(queue, depth)
                record = measure(queue_stats.record, connection)
                snapshot = queue_stats.collect(connection)
                assert snapshot["queues"]["webhooks"]["jobs"]["queued"] == depth
                results[depth] = (record, measure(scrape, connection))
    rows = []
    shallow, deep = depths[0], depths[-1]
    for label, index in (("record_queue_stats", 0), ("/metrics scrape (API)", 1)):
        times = ", ".join(f"{depth:,}: {results[depth][index][0] * 1000:.2f} ms / {results[depth][index][1]} cmds"
                          for depth in depths)
        ratio = results[deep][index][0] / results[shallow][index][0]
        flat_commands = len({results[depth][index][1] for depth in depths}) == 1
        rows.append(Row(
            f"4. {label} at {', '.join(f'{d:,}' for d in depths)} queued",
            f"{results[deep][index][0] * 1000:.2f} ms, {results[deep][index][1]} Redis cmds at {deep:,}",
            f"{results[shallow][index][0] * 1000:.2f} ms, {results[shallow][index][1]} Redis cmds at {shallow:,}",
            ratio, f"flat (time <= {TARGET}x, same commands)", ratio <= TARGET and flat_commands,
            [f"{label}: {times}"],
        ))
    return rows
