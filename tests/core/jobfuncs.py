"""Job functions for tests: importable by worker subprocesses through PYTHONPATH."""


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str = "boom") -> None:
    raise RuntimeError(message)
