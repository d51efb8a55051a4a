"""1. Job throughput: the instrumented ModwatchWorker against a bare rq worker of the same class.

Both drain the same number of no-op jobs from the same queue, in alternating rounds. The modwatch worker runs as in
production: tracing exported to an OTLP/HTTP receiver (here a local one), metrics recorded and
served, structlog logging. Each run is a child process, timed from its first job until
`work(burst=True)` returns; its start-up is reported apart (see drain.py).

    python bench/bench_worker.py [--jobs N] [--only fork|simple]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from rq import Queue

from common import BENCH, OtlpReceiver, Row, child_env, flush, python, redis_client
from modwatch.jobs.queues import WEBHOOKS, ModwatchQueue

JOBS = 2000
ROUNDS = 8
TARGET = 0.9


def fill(kind: str, jobs: int) -> None:
    flush()
    queue_class = ModwatchQueue if kind == "modwatch" else Queue
    queue = queue_class(WEBHOOKS, connection=redis_client())
    for start in range(0, jobs, 500):
        queue.enqueue_many([Queue.prepare_data("benchjobs.noop", result_ttl=60) for _ in range(min(500, jobs - start))])


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


def run(jobs: int = JOBS, workers: tuple[str, ...] = tuple(WORKERS), rounds: int = ROUNDS) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, OtlpReceiver() as receiver:
        env = child_env(Path(tmp), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        for klass in workers:
            label = WORKERS[klass]
            seconds = {"bare": 0.0, "modwatch": 0.0}
            startup = {"bare": 0.0, "modwatch": 0.0}
            exports = 0
            # The jobs in rounds that alternate between the two workers: the machine's speed
            # drifts over minutes, and both should meet it alike.
            for _ in range(rounds):
                for kind in ("bare", "modwatch"):
                    fill(kind, jobs // rounds)
                    exports_before = receiver.requests
                    timing = drain(kind, klass, env)
                    seconds[kind] += timing["seconds"]
                    startup[kind] += timing["startup"]
                    if kind == "modwatch":
                        exports += receiver.requests - exports_before
            ratio = seconds["bare"] / seconds["modwatch"]
            rows.append(Row(
                f"1. job throughput, {label}, {jobs} no-op jobs",
                f"{jobs / seconds['modwatch']:.0f} jobs/s ({seconds['modwatch']:.1f} s)",
                f"{jobs / seconds['bare']:.0f} jobs/s ({seconds['bare']:.1f} s)",
                ratio, f">= {TARGET}", ratio >= TARGET,
                [f"{label}: {exports} OTLP exports received from the modwatch run; start-up (work() until the first "
                 f"job, not counted above) {startup['modwatch'] / rounds * 1000:.1f} ms against "
                 f"{startup['bare'] / rounds * 1000:.1f} ms bare"],
            ))
    flush()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--only", choices=tuple(WORKERS), help="one worker class instead of both")
    args = parser.parse_args()
    for row in run(args.jobs, (args.only,) if args.only else tuple(WORKERS)):
        print(f"{row.name}: {row.measured} vs {row.baseline}, ratio {row.ratio:.2f} ({row.target}); {'; '.join(row.notes)}")
