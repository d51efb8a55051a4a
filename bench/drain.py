"""Drain one queue with one worker and print the seconds it took (a child process of bench_worker):
from the start of the first job until work() returns, and apart from that the worker's start-up
(`work()` until the first job), which a worker pays once and the benchmark's rounds would count
again in every round.

    python bench/drain.py modwatch|bare fork|simple QUEUE
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from rq import Queue, SimpleWorker, Worker

from modwatch.connection import get_redis


def build(kind: str, klass: str, queue_name: str) -> Worker:
    connection = get_redis()
    if kind == "bare":
        worker_class = SimpleWorker if klass == "simple" else Worker
        return worker_class([Queue(queue_name, connection=connection)], connection=connection)
    from modwatch.jobs.worker import build_worker, serve_metrics
    from modwatch.settings import get_settings
    from modwatch.telemetry import init_process

    from common import free_port

    init_process("worker", get_settings())
    serve_metrics(free_port())
    return build_worker(connection, [queue_name], simple=klass == "simple")


def main(kind: str, klass: str, queue_name: str) -> None:
    worker = build(kind, klass, queue_name)
    first_job: list[float] = []
    execute_job = worker.execute_job

    def timed_execute_job(job: Any, queue: Any) -> Any:
        if not first_job:
            first_job.append(time.perf_counter())
        return execute_job(job, queue)

    worker.execute_job = timed_execute_job
    started = time.perf_counter()
    worker.work(burst=True, with_scheduler=False, logging_level="INFO")
    ended = time.perf_counter()
    print(json.dumps({"seconds": ended - first_job[0], "startup": first_job[0] - started}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
