"""Typed outcomes of a Mastodon call, so callers decide retry, give up or alert without parsing text."""

from __future__ import annotations

from datetime import datetime, timezone

# Mastodon answers 403 without naming the scope it wanted: this table does, per endpoint template.
REQUIRED_SCOPES = {
    ("GET", "/api/v2/admin/accounts"): "admin:read:accounts",
    ("GET", "/api/v1/admin/reports"): "admin:read:reports",
    ("GET", "/api/v1/admin/reports/:id"): "admin:read:reports",
    ("POST", "/api/v1/reports"): "write:reports",
    ("GET", "/api/v1/accounts/:id/statuses"): "read:statuses",
    ("GET", "/api/v1/accounts/verify_credentials"): "read:accounts",
}


class MastodonError(Exception):
    """Any failed Mastodon call. `status` is the HTTP status (None without an answer)."""

    def __init__(self, message: str, status: int | None = None, endpoint: str | None = None):
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class RetryableError(MastodonError):
    """5xx, network failure or timeout: try again after `retry_after_seconds`."""

    def __init__(self, message: str, retry_after_seconds: float, status: int | None = None, endpoint: str | None = None):
        super().__init__(message, status, endpoint)
        self.retry_after_seconds = retry_after_seconds


class RateLimitedError(RetryableError):
    """429: the window resets at `reset_at`; never sleep on it inside a worker, reschedule.

    `families` names the limit that refused (see modwatch.mastodon.families): a report-limit 429
    pauses filing only, not polls or analyses."""

    def __init__(self, message: str, reset_at: datetime, now: datetime | None = None, endpoint: str | None = None,
                 families: tuple[str, ...] = ()):
        now = now or datetime.now(timezone.utc)
        super().__init__(message, max((reset_at - now).total_seconds(), 0.0), 429, endpoint)
        self.reset_at = reset_at
        self.families = families


class UnauthorizedError(MastodonError):
    """401: the token is invalid or revoked; retrying cannot help."""


class ForbiddenError(MastodonError):
    """403: the token lacks a scope or the account lacks a permission."""

    def __init__(self, message: str, missing_scope: str | None, endpoint: str | None = None):
        super().__init__(message, 403, endpoint)
        self.missing_scope = missing_scope


class GoneError(MastodonError):
    """404: the account or status no longer exists (or is not visible to us); record it and give up.

    On `POST /api/v1/reports` it does not say which: a suspended or deleted account and any
    attached status that is no longer visible all answer the same 404 (app/services/report_service.rb)."""


class NotSentError(MastodonError):
    """Mastodon.py refused the call before sending it (an argument it does not accept)."""


class UnprocessableError(MastodonError):
    """422: Mastodon rejected the input."""


class IncompatibleVersionError(MastodonError):
    """The instance is older than the admin v2 accounts API (Mastodon 4.0)."""
