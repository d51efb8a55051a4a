"""The raw request body, read by the intake middleware before the endpoint's thread was taken.

Signatures are computed over the exact bytes, so the body must not be parsed first; a sync
endpoint takes it from the request scope without a round trip to the event loop.
"""

from __future__ import annotations

from fastapi import Request

SCOPE_KEY = "modwatch.body"


def buffered_body(request: Request) -> bytes:
    return request.scope[SCOPE_KEY]
