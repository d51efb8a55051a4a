"""Job functions the benchmarks enqueue; workers import them through PYTHONPATH."""


def noop() -> None:
    return None
