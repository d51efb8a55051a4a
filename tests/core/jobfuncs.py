"""Job functions for tests: importable by worker subprocesses through PYTHONPATH."""


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str = "boom") -> None:
    raise RuntimeError(message)


def die_abruptly(code: int = 3) -> None:
    """A work horse that ends without RQ's bookkeeping, as a crash in native code would."""
    import os

    os._exit(code)
