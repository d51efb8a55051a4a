"""3. Webhook intake under load: `modwatch api` against a bare FastAPI endpoint that only enqueues.

Both are uvicorn processes started the same way; the load generator (bench/load.py) runs in this
process. Every request carries a unique status id, so modwatch's dedupe never short-circuits.
Peak: closed loop with THREADS senders, in rounds alternating between the servers. Then a
paced pass at half of modwatch's peak for p99. A third server, modwatch with 10% of traces
sampled (the standard OTEL_TRACES_SAMPLER variables), shows in the notes what tracing every
request costs; the target is measured with every request traced, modwatch's default.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from common import BENCH, WEBHOOK_SECRET, OtlpReceiver, Row, child_env, flush, free_port, python, redis_client, stop, wait_http
from load import LoadResult, closed_loop, paced, signed_bodies

THREADS = 8
SECONDS = 12.0
ROUNDS = 4
PACED_SECONDS = 15.0
TARGET_RATIO = 0.8
TARGET_P99 = 0.050
PATH = "/webhooks/mastodon_events"
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}


def serve(kind: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = (python(str(BENCH / "bare_api.py"), str(port)) if kind == "bare"
            else python("-m", "modwatch.cli", "api", "--host", "127.0.0.1", "--port", str(port)))
    if kind == "sampled":
        env = {**env, **SAMPLED}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/docs", process)
    return process, f"http://127.0.0.1:{port}{PATH}"


def run(seconds: float = SECONDS, paced_seconds: float = PACED_SECONDS, rounds: int = ROUNDS) -> list[Row]:
    next_id = 10**15

    def bodies(count: int) -> list[tuple[bytes, str]]:
        nonlocal next_id
        made = signed_bodies(WEBHOOK_SECRET, count, next_id)
        next_id += count
        return made

    flush()
    with tempfile.TemporaryDirectory() as tmp, OtlpReceiver() as receiver:
        env = child_env(Path(tmp), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        servers = {kind: serve(kind, env) for kind in ("bare", "modwatch", "sampled")}
        try:
            for _, url in servers.values():
                closed_loop(url, bodies(200), THREADS, 1.0)  # warm up
            flush()
            # The peak in rounds that alternate between the servers: the machine's speed
            # drifts, and both should meet it alike.
            results = {kind: LoadResult(0.0) for kind in servers}
            for _ in range(rounds):
                for kind, (_, url) in servers.items():
                    results[kind].add(closed_loop(url, bodies(int(seconds / rounds * 3000)), THREADS, seconds / rounds))
            half = results["modwatch"].rate / 2
            results["paced"] = paced(servers["modwatch"][1], bodies(int(half * paced_seconds) + 1), half, paced_seconds,
                                     THREADS)
            queued = redis_client().llen("rq:queue:webhooks")
        finally:
            for process, _ in servers.values():
                stop(process)
    accepted = sum(result.statuses[202] for result in results.values())
    if queued != accepted:
        raise RuntimeError(f"{accepted} answered 202 but {queued} jobs queued")
    flush()
    modwatch, bare, half, sampled = results["modwatch"], results["bare"], results["paced"], results["sampled"]
    ratio = modwatch.rate / bare.rate
    notes = [f"webhooks peak: {THREADS} threads closed loop {seconds:.0f} s; statuses modwatch {dict(modwatch.statuses)}, "
             f"bare {dict(bare.statuses)}",
             f"webhooks peak with 10% of traces sampled: {sampled.rate:.0f} req/s, {sampled.rate / bare.rate:.2f} of bare "
             f"(every request traced: {ratio:.2f})",
             f"webhooks paced at {half.rate:.0f} req/s for {paced_seconds:.0f} s: p50 {half.p(0.5) * 1000:.1f} ms, "
             f"p99 {half.p(0.99) * 1000:.1f} ms (from scheduled send time), statuses {dict(half.statuses)}"]
    return [
        Row(f"3. webhook intake peak ({THREADS} concurrent)",
            f"{modwatch.rate:.0f} req/s, p50 {modwatch.p(0.5) * 1000:.1f} ms, p99 {modwatch.p(0.99) * 1000:.1f} ms",
            f"{bare.rate:.0f} req/s, p50 {bare.p(0.5) * 1000:.1f} ms, p99 {bare.p(0.99) * 1000:.1f} ms",
            ratio, f">= {TARGET_RATIO}", ratio >= TARGET_RATIO, notes),
        Row("3. webhook intake at half peak, p99",
            f"p99 {half.p(0.99) * 1000:.1f} ms at {half.rate:.0f} req/s", "50 ms budget",
            half.p(0.99) / TARGET_P99, "p99 < 50 ms (ratio < 1)", half.p(0.99) < TARGET_P99),
    ]
