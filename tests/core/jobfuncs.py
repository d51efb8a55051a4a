"""Job functions for tests: importable by worker subprocesses through PYTHONPATH."""


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str = "boom") -> None:
    raise RuntimeError(message)


def die_abruptly(code: int = 3) -> None:
    """A work horse that ends without RQ's bookkeeping, as a crash in native code would."""
    import os

    os._exit(code)


def count_rule_hits(rules: int) -> None:
    """Changes many metric series: a report larger than a pipe's 64 KiB buffer."""
    from modwatch.telemetry.metrics import RULE_HITS

    for index in range(rules):
        RULE_HITS.labels(rule=f"bulk-{index}").inc()


def sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)
