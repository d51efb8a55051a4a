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
