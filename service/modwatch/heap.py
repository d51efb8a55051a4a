"""Keeping a long-running process's start-up objects out of the garbage collector's way."""

from __future__ import annotations

import gc


def freeze_heap() -> None:
    """Collect once, then move every object so far to the collector's permanent generation.

    A process builds tens of thousands of long-lived objects as it starts (modules, the app,
    settings, clients), and every full collection would walk them all again. In the API that is a
    pause of tens of milliseconds in whichever request happens to trigger it (the tail of webhook
    latency, docs/performance.md); in a forking worker, a work horse's collection writes to every
    one of them and so copies the worker's heap into the horse page by page.
    """
    gc.collect()
    gc.freeze()


# Allocations between young collections (CPython's default is 700). See `collect_less_often`.
YOUNG_THRESHOLD = 50_000


def collect_less_often() -> None:
    """Run the collector's young generation about 70 times less often, for a process whose work is
    to allocate and drop many small objects around a large long-lived set.

    The stream consumer is that process: each post is a few dozen dicts and lists that live for one
    batch, beside a window of tens of thousands of accounts' recent posts. With the default
    threshold the collector runs after every few posts; it took about a third of the process's
    time, walking objects that were about to be freed anyway (docs/performance.md, section 8).
    Reference counting still frees them at once; the collector is only for cycles, rare here.
    """
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
