"""The error bodies the API answers with, and the responses each kind of route documents.

Every refusal carries a reason: `{"detail": "..."}` (`Problem`), or for a 422 the list FastAPI
gives for its own validation errors (`HTTPValidationError`), so the published OpenAPI schema
describes every 4xx a client can get (tests/faults/test_intake.py runs schemathesis with all its
checks against it).
"""

from __future__ import annotations

from typing import Any, Sequence

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field


class Problem(BaseModel):
    detail: str = Field(description="Why the request was refused")


def problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


# Every route: refused by the intake before routing (docs/security.md).
INTAKE: dict[int | str, dict[str, Any]] = {
    408: problem("Request headers or body not received within REQUEST_HEADER_TIMEOUT / REQUEST_BODY_TIMEOUT"),
    413: problem("Body larger than REQUEST_MAX_BODY_BYTES (WEBHOOK_MAX_BODY_BYTES on the webhook route)"),
    431: problem("Request headers larger than REQUEST_MAX_HEADER_BYTES or more than REQUEST_MAX_HEADERS"),
}
# Every route behind the API key.
AUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: problem("Missing or invalid API key"),
    503: problem("API_KEY is not configured, or Redis, the database or the rules file is unavailable"),
}


def unprocessable(message: str, loc: Sequence[str | int] = ("body",), errors: list[dict] | None = None) -> RequestValidationError:
    """A 422 in the shape of FastAPI's own validation errors, the one the schema documents."""
    return RequestValidationError(errors or [{"type": "value_error", "loc": tuple(loc), "msg": message, "input": None}])
