"""JSON as RFC 8259 defines it: no NaN, Infinity or numbers too large for a float.

Python's `json` accepts `NaN` and `Infinity` and turns `1e999` into `inf`; a threshold of `inf`
never reports and a `NaN` fails later as a 500. Every route parses request bodies here, through
`StrictJSONRoute` (FastAPI's documented extension point for a custom request class): a refused
number is a `json_invalid` 422 naming it, the same shape as any other malformed body.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Coroutine

from fastapi import Request, Response
from fastapi.routing import APIRoute


class _NonFinite(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _refuse_constant(token: str) -> Any:
    raise _NonFinite(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NonFinite(token)
    return value


def loads(body: bytes | str) -> Any:
    """`json.loads` that refuses non-finite numbers; every refusal is a `json.JSONDecodeError` with a reason."""
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as exc:
        doc = _text(body)
        raise json.JSONDecodeError(
            f"non-finite number {exc.token} is not allowed (JSON has no NaN or Infinity)", doc, max(doc.find(exc.token), 0)
        ) from None
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("body is nested too deeply", _text(body), 0) from None
    except ValueError as exc:
        # Bad UTF-8, or an integer past Python's 4300-digit limit.
        raise json.JSONDecodeError(str(exc), _text(body), 0) from None


def _text(body: bytes | str) -> str:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
