"""1. Job throughput: the instrumented ModwatchWorker against a bare rq worker of the same class.

Both drain the same jobs from the same queue, in alternating rounds. Two kinds of job: a
realistic one (`benchjobs.mastodon_and_db`: one call to the Mastodon simulator, which answers
after SIMULATOR_LATENCY_MS as a real instance would, and one committed database write, 50-200
ms in all), whose ratio is the target, and a no-op, whose ratio shows the fixed cost per job and
is information only. The modwatch worker runs as in production: tracing exported to an OTLP/HTTP
receiver (here a local one), metrics recorded and served, structlog logging. Each run is a child
process, timed from its first job until `work(burst=True)` returns; its start-up is reported
apart (see drain.py).

    python bench/bench_worker.py [--jobs N] [--realistic-jobs N] [--only fork|simple]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

from rq import Queue

from common import BENCH, OtlpReceiver, Row, child_env, flush, free_port, python, redis_client, wait_http
from modwatch.jobs.queues import WEBHOOKS
from modwatch.jobs.rq_integration import ModwatchQueue

JOBS = 2000
REALISTIC_JOBS = 240
ROUNDS = 8
TARGET = 0.95  # of the realistic job; the no-op's ratio is information
SIMULATOR_LATENCY_MS = 60
SIMULATOR_TOKEN = "bench-admin-token"


@contextlib.contextmanager
def simulator() -> Iterator[str]:
    """The Mastodon simulator in its own process, with a real instance's latency and limits out of the way."""
    port = free_port()
    process = subprocess.Popen(
        python("-m", "modwatch.cli", "simulate", "--port", str(port), "--latency-ms", str(SIMULATOR_LATENCY_MS),
               "--ratelimit", "1000000", "--paging-limit", "1000000", "--admin-token", SIMULATOR_TOKEN),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base_url}/api/v1/instance", process)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def job_data(job: str, count: int, context: dict[str, Any]) -> list[Any]:
    if job == "noop":
        return [Queue.prepare_data("benchjobs.noop", result_ttl=60) for _ in range(count)]
    return [Queue.prepare_data("benchjobs.mastodon_and_db", result_ttl=60,
                               args=(context["simulator"], SIMULATOR_TOKEN, str(100 + index % 50), context["database"]))
            for index in range(count)]


def fill(kind: str, job: str, jobs: int, context: dict[str, Any]) -> None:
    flush()
    queue_class = ModwatchQueue if kind == "modwatch" else Queue
    queue = queue_class(WEBHOOKS, connection=redis_client())
    for start in range(0, jobs, 500):
        queue.enqueue_many(job_data(job, min(500, jobs - start), context))


def drain(kind: str, klass: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(python(str(BENCH / "drain.py"), kind, klass, WEBHOOKS), env=env, capture_output=True,
                          text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {klass} worker failed:\n{done.stderr[-3000:]}")
    left = redis_client().llen(f"rq:queue:{WEBHOOKS}")
    if left:
        raise RuntimeError(f"{kind} {klass} worker left {left} jobs")
    return json.loads(done.stdout.strip().splitlines()[-1])


WORKERS = {"fork": "Worker (forking)", "simple": "SimpleWorker"}


def run(jobs: int = JOBS, workers: tuple[str, ...] = tuple(WORKERS), rounds: int = ROUNDS,
        realistic_jobs: int = REALISTIC_JOBS) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, OtlpReceiver() as receiver, simulator() as base_url:
        env = child_env(Path(tmp), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        context = {"simulator": base_url, "database": str(Path(tmp) / "bench-decisions.db")}
        for job, count in (("realistic", realistic_jobs), ("noop", jobs)):
            for klass in workers if count else ():
                rows.append(measure(job, count, klass, rounds, env, receiver, context))
    flush()
    return rows


def measure(job: str, jobs: int, klass: str, rounds: int, env: dict[str, str], receiver: Any,
            context: dict[str, Any]) -> Row:
    label = WORKERS[klass]
    seconds = {"bare": 0.0, "modwatch": 0.0}
    startup = {"bare": 0.0, "modwatch": 0.0}
    exports = 0
    # The jobs in rounds that alternate between the two workers: the machine's speed
    # drifts over minutes, and both should meet it alike.
    for _ in range(rounds):
        for kind in ("bare", "modwatch"):
            fill(kind, "noop" if job == "noop" else "realistic", jobs // rounds, context)
            exports_before = receiver.requests
            timing = drain(kind, klass, env)
            seconds[kind] += timing["seconds"]
            startup[kind] += timing["startup"]
            if kind == "modwatch":
                exports += receiver.requests - exports_before
    ratio = seconds["bare"] / seconds["modwatch"]
    done = jobs // rounds * rounds
    what = (f"{done} realistic jobs (Mastodon call with {SIMULATOR_LATENCY_MS} ms latency + database write)"
            if job == "realistic" else f"{done} no-op jobs (information)")
    return Row(
        f"1. job throughput, {label}, {what}",
        f"{done / seconds['modwatch']:.1f} jobs/s ({seconds['modwatch']:.1f} s, "
        f"{seconds['modwatch'] / done * 1000:.1f} ms/job)",
        f"{done / seconds['bare']:.1f} jobs/s ({seconds['bare']:.1f} s, {seconds['bare'] / done * 1000:.1f} ms/job)",
        ratio, f">= {TARGET}" if job == "realistic" else "information", ratio >= TARGET or job == "noop",
        [f"{label}, {job}: {exports} OTLP exports received from the modwatch run; start-up (work() until the first "
         f"job, not counted above) {startup['modwatch'] / rounds * 1000:.1f} ms against "
         f"{startup['bare'] / rounds * 1000:.1f} ms bare"],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=JOBS, help="no-op jobs")
    parser.add_argument("--realistic-jobs", type=int, default=REALISTIC_JOBS, help="0 leaves them out, as --jobs 0 the no-ops")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--only", choices=tuple(WORKERS), help="one worker class instead of both")
    args = parser.parse_args()
    for row in run(args.jobs, (args.only,) if args.only else tuple(WORKERS), args.rounds, args.realistic_jobs):
        print(f"{row.name}: {row.measured} vs {row.baseline}, ratio {row.ratio:.2f} ({row.target}); {'; '.join(row.notes)}")
