"""Reading a raw request body from a sync endpoint, with a size limit.

Signatures are computed over the exact bytes, so the body must not be parsed first. Sync endpoints
run in a worker thread, and every `anyio.from_thread.run` is a round trip to the event loop that
waits for it under load. A body whose Content-Length is within the limit is read in one such trip;
a body without one (chunked) is stepped one chunk at a time, so an oversized body is refused
without being read whole. The server holds a body to its declared length, so it cannot outgrow it.
"""

from __future__ import annotations

import anyio.from_thread
from fastapi import Request


class BodyTooLarge(Exception):
    pass


def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise BodyTooLarge
        return anyio.from_thread.run(request.body)
    stream = request.stream()
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = anyio.from_thread.run(stream.__anext__)
        except StopAsyncIteration:
            break
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
