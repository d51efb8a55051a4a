"""2. Enqueue cost: ModwatchQueue.enqueue (send span, trace context and request id in job.meta,
enqueue counter) with a real SDK TracerProvider exporting over OTLP/HTTP, against rq's Queue.enqueue.

ModwatchQueue also saves one of the two round trips RQ makes (jobs/rq_integration.py). Rounds
alternate between the two so that load from anything else on the machine hits them alike; each
figure is the median per-enqueue time over all rounds.

    python bench/bench_enqueue.py [--rounds N] [--per-round N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from opentelemetry import trace
from rq import Queue

from common import OtlpReceiver, Row, flush, redis_client
from modwatch.jobs.queues import WEBHOOKS
from modwatch.jobs.rq_integration import ModwatchQueue

ROUNDS = 10
PER_ROUND = 300
TARGET = 1.2


def per_enqueue(queue: Queue, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        queue.enqueue("benchjobs.noop", result_ttl=60)
    return (time.perf_counter() - started) / count


def run(rounds: int = ROUNDS, per_round: int = PER_ROUND) -> list[Row]:
    from modwatch.telemetry import tracing

    with OtlpReceiver() as receiver:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        try:
            provider = tracing.build_provider("bench")
        finally:
            del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        trace.set_tracer_provider(provider)
        flush()
        connection = redis_client()
        queues = {"bare": Queue(WEBHOOKS, connection=connection), "modwatch": ModwatchQueue(WEBHOOKS, connection=connection)}
        for queue in queues.values():
            per_enqueue(queue, 50)  # warm connections and imports
        times: dict[str, list[float]] = {kind: [] for kind in queues}
        for _ in range(rounds):
            for kind, queue in queues.items():
                times[kind].append(per_enqueue(queue, per_round))
        provider.shutdown()  # exports what is left while the receiver still listens
        exported = receiver.requests
    flush()
    modwatch, baseline = (statistics.median(times[kind]) for kind in ("modwatch", "bare"))
    ratio = modwatch / baseline
    return [Row(
        f"2. enqueue cost, {rounds * per_round} enqueues each",
        f"{modwatch * 1e6:.0f} us/enqueue", f"{baseline * 1e6:.0f} us/enqueue", ratio, f"<= {TARGET}x", ratio <= TARGET,
        [f"enqueue: {exported} OTLP exports received (spans batched)"],
    )]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--per-round", type=int, default=PER_ROUND)
    args = parser.parse_args()
    for row in run(args.rounds, args.per_round):
        print(f"{row.name}: {row.measured} vs {row.baseline}, ratio {row.ratio:.2f} ({row.target}); {'; '.join(row.notes)}")
