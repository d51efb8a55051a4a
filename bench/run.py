"""Run every benchmark and print the results table; `--write-docs` also writes docs/performance.md.

    python bench/run.py [--only worker,enqueue,webhooks,queue_stats,rules,poll] [--write-docs]

Uses Redis database 6 on 127.0.0.1:6379 (BENCH_REDIS_URL overrides) and flushes only that
database; the queue-stats benchmark starts a private redis-server. Takes 4 to 6 minutes on
2 cores (up to 15 when the host is slow), most of it the forking worker draining 2,000 jobs twice.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Row, redis_client  # noqa: E402

BENCHMARKS = ("worker", "enqueue", "webhooks", "queue_stats", "rules", "poll", "slow_clients", "stream")
MARK_START, MARK_END = "<!-- results:start -->", "<!-- results:end -->"


def run_one(name: str) -> list[Row]:
    module = __import__(f"bench_{name}")
    return module.run()


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | modwatch | baseline | ratio | target | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.name} | {row.measured} | {row.baseline} | {row.ratio:.2f} | {row.target} | "
                     f"{'yes' if row.met else '**no**'} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal"))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, {memory_kb / 1024 / 1024:.1f} GiB memory, Python {platform.python_version()}, "
            f"Redis {redis_client().info('server')['redis_version']}, {platform.system()} {platform.release()}; "
            f"load average at the end of the run {load}")


def results_block(rows: list[Row], seconds: float, command: str) -> str:
    notes = "\n".join(f"- {note}" for row in rows for note in row.notes)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return "\n".join([
        MARK_START,
        f"Run `{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC at commit {commit}, "
        f"{seconds / 60:.1f} minutes.",
        "",
        f"Machine: {machine()}.",
        "",
        table(rows),
        "",
        notes,
        MARK_END,
    ])


def write_docs(block: str) -> None:
    path = REPO / "docs" / "performance.md"
    text = path.read_text()
    start, end = text.index(MARK_START), text.index(MARK_END) + len(MARK_END)
    path.write_text(text[:start] + block + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--write-docs", action="store_true", help="replace the results in docs/performance.md")
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[Row] = []
    for name in args.only.split(","):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(run_one(name.strip()))
    block = results_block(rows, time.monotonic() - started, "python bench/run.py" + (" --write-docs" if args.write_docs else ""))
    print(block)
    if args.write_docs:
        write_docs(block)
    return 0 if all(row.met for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
