"""The one way modwatch talks to Mastodon: Mastodon.py underneath, plain JSON and typed errors on top.

Answers are returned as the API's own JSON (ids are strings: compare them as ints), read from the
raw response rather than from Mastodon.py's converted objects. One client per thread: the last
answer is kept on the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import mastodon
import requests

from modwatch import __version__
from modwatch.mastodon.errors import (
    REQUIRED_SCOPES,
    ForbiddenError,
    GoneError,
    IncompatibleVersionError,
    MastodonError,
    NotSentError,
    RateLimitedError,
    RetryableError,
    UnauthorizedError,
    UnprocessableError,
)
from modwatch.mastodon.families import attribute, counted_by
from modwatch.mastodon.transport import Call, InstrumentedSession

NETWORK_RETRY_SECONDS = 5.0
SERVER_ERROR_RETRY_SECONDS = 30.0
UNKNOWN_RESET_SECONDS = 60.0  # a 429 without a usable X-RateLimit-Reset
ORIGINS = ("local", "remote")
# Stream name (as Mastodon's streaming server names its channels) -> Mastodon.py's arguments.
_STREAM_SCOPES = {"public": {}, "public:local": {"local": True}, "public:remote": {"remote": True}}
# Mastodon's report categories (app/models/report.rb); Mastodon.py 2.3 accepts all but `legal` (4.2+).
REPORT_CATEGORIES = ("other", "spam", "legal", "violation")
MASTODON_PY_CATEGORIES = ("spam", "violation", "other")
# Mastodon.py's private (name-mangled) request and casting functions, reached by name where its public API
# falls short (see file_report and _call); tests/mastodon/ breaks when it renames them.
_API_REQUEST = "_Mastodon__api_request"
_TRY_CAST = "_Mastodon__try_cast_to_type"


@dataclass
class Page:
    items: list[dict]
    next_max_id: str | None  # older page: pass as max_id
    prev_min_id: str | None  # newer page: pass as min_id


@dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    reset_at: datetime | None
    # The rate-limit families these headers describe (modwatch.mastodon.families); empty when unknown.
    families: tuple[str, ...] = ()
    # The families the request counted against, whatever the headers describe.
    counted: tuple[str, ...] = ()
    status: int | None = None


class MastodonClient:
    def __init__(self, base_url: str, access_token: str, timeout: float = 10,
                 user_agent: str = f"modwatch/{__version__}"):
        self.base_url = base_url.rstrip("/")
        self._session = InstrumentedSession()
        # "throw": a 429 raises at once; Mastodon.py's "wait" would block a worker for minutes.
        self._api = mastodon.Mastodon(api_base_url=self.base_url, access_token=access_token, ratelimit_method="throw",
                                      request_timeout=timeout, user_agent=user_agent, session=self._session)

    @classmethod
    def from_settings(cls, settings) -> MastodonClient:
        if not settings.instance_base or settings.mastodon_access_token is None:
            raise MastodonError("INSTANCE_BASE and MASTODON_ACCESS_TOKEN must both be set")
        return cls(settings.instance_base, settings.mastodon_access_token.get_secret_value())

    def check_version(self) -> str:
        """The instance's version; raises when unreachable or older than 4.0 (no admin v2 accounts)."""
        try:
            version = self._api.retrieve_mastodon_version(fail_hard=True)
        except mastodon.MastodonError as exc:
            raise self._translate(exc.__cause__ or exc) from exc
        if not self._api.verify_minimum_version("4.0.0", cached=True):
            raise IncompatibleVersionError(f"{self.base_url} runs Mastodon {version}; modwatch needs 4.0 or newer")
        return version

    def admin_accounts(self, origin: str, status: str | None = None, max_id: str | None = None,
                       since_id: str | None = None, min_id: str | None = None, limit: int = 100) -> Page:
        if origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, got {origin!r}")
        response = self._call(self._api.admin_accounts_v2, origin=origin, status=status, max_id=max_id,
                              since_id=since_id, min_id=min_id, limit=limit)
        return Page(response.json(), *link_cursors(response.headers.get("Link", "")))

    def account(self, account_id: str) -> dict:
        return self._call(self._api.account, account_id).json()

    def account_statuses(self, account_id: str, limit: int = 40) -> list[dict]:
        return self._call(self._api.account_statuses, account_id, limit=limit).json()

    def file_report(self, account_id: str, status_ids: list[str], comment: str, category: str = "spam",
                    forward: bool = False, rule_ids: list[str] | None = None) -> dict:
        if category not in REPORT_CATEGORIES:
            raise NotSentError(f"report category must be one of {', '.join(REPORT_CATEGORIES)}, got {category!r}")
        if category in MASTODON_PY_CATEGORIES:
            return self._call(self._api.report, account_id, status_ids=list(status_ids), comment=comment,
                              forward=forward, category=category, rule_ids=rule_ids).json()
        # Mastodon.py 2.3's report() refuses `legal` before sending (it predates Mastodon 4.2); its own
        # request function sends the same form (tests/mastodon/test_client_legal.py breaks when that changes).
        params = {"account_id": account_id, "status_ids[]": list(status_ids), "comment": comment,
                  "category": category, **({"forward": "true"} if forward else {})}
        return self._call(getattr(self._api, _API_REQUEST), "POST", "/api/v1/reports/", params).json()

    def admin_report(self, report_id: str) -> dict:
        return self._call(self._api.admin_report, report_id).json()

    def status(self, status_id: str) -> dict:
        return self._call(self._api.status, status_id).json()

    def instance_rules(self) -> list[dict]:
        return self._call(self._api.instance_rules).json()

    def app_credentials(self) -> dict:
        return self._call(self._api.app_verify_credentials).json()

    def admin_reports(self, limit: int = 100, resolved: bool = False, target_account_id: str | None = None,
                      account_id: str | None = None, max_id: str | None = None) -> list[dict]:
        """Open (or resolved) reports, newest first; `account_id` is the reporter, `target_account_id` the reported."""
        return self._call(self._api.admin_reports, resolved=resolved, target_account_id=target_account_id,
                          account_id=account_id, max_id=max_id, limit=limit).json()

    def verify_credentials(self) -> dict:
        return self._call(self._api.account_verify_credentials).json()

    def instance(self) -> dict:
        return self._call(self._api.instance_v2).json()

    def public_timeline(self, stream: str, min_id: str | None = None, limit: int = 40) -> Page:
        """A page of the timeline behind a public stream (`public`, `public:local`, `public:remote`)."""
        response = self._call(self._api.timeline_public, min_id=min_id, limit=limit, **_STREAM_SCOPES[stream])
        return Page(response.json(), *link_cursors(response.headers.get("Link", "")))

    def stream(self, stream: str, listener: mastodon.StreamListener, read_timeout: float) -> None:
        """Consume a public stream until it ends or fails (Mastodon.py finds the streaming server).

        Returns when the server ends the stream; raises on a failed connection or a read timeout.
        """
        self._api.stream_public(listener, timeout=read_timeout, **_STREAM_SCOPES[stream])

    @property
    def ratelimit(self) -> RateLimit:
        """The X-RateLimit-* headers of the last answer."""
        return rate_limit_of(self._session.last_call)

    def take_answers(self) -> list[RateLimit]:
        """The rate-limit headers of every answer since the last take, oldest first (one wrapper call may
        send several requests: the version check, pages of a search)."""
        calls = list(self._session.calls)
        self._session.calls.clear()
        return [rate_limit_of(call) for call in calls if call.response is not None]

    def _call(self, function, *args, **kwargs) -> requests.Response:
        # Cleared first: an error raised before sending must not be read from the previous answer.
        self._session.last_call = None
        # The answer is read raw from the session: Mastodon.py's casting into its own types (1 s of CPU for
        # a page of 100 admin accounts, 0.1 s for 40 statuses) is skipped for these calls only (private;
        # tests/mastodon/test_client_families.py breaks when Mastodon.py renames it).
        setattr(self._api, _TRY_CAST, _uncast)
        try:
            function(*args, **kwargs)
        except mastodon.MastodonError as exc:
            raise self._translate(exc) from exc
        finally:
            delattr(self._api, _TRY_CAST)
        if self._session.last_call is None or self._session.last_call.response is None:
            raise NotSentError(f"{getattr(function, '__name__', function)} returned without sending a request")
        return self._session.last_call.response

    def _translate(self, exc: BaseException) -> MastodonError:
        if self._session.last_call is None and not isinstance(exc, mastodon.MastodonNetworkError):
            return NotSentError(f"Mastodon.py refused the call before sending it: {exc}")
        call = self._session.last_call or Call("", "", None)
        return translate(exc, call)


def _uncast(value, override_type=None):
    """Mastodon.py's `__try_cast_to_type` without the cast: (value, type name)."""
    return value, None


def rate_limit_of(call: Call | None) -> RateLimit:
    """An answer's X-RateLimit-* headers and the families they describe."""
    if call is None or call.response is None:
        return RateLimit(None, None, None)
    headers = call.response.headers
    limit, remaining = headers.get("X-RateLimit-Limit", ""), headers.get("X-RateLimit-Remaining", "")
    reset_at = parse_reset(headers.get("X-RateLimit-Reset"))
    status = call.response.status_code
    counted = counted_by(call.method, call.endpoint, call.params, authenticated=status != 401)
    limit_value = int(limit) if limit.isdigit() else None
    families = attribute(counted, limit_value, reset_at, server_time(call.response)) if reset_at else ()
    return RateLimit(limit_value, int(remaining) if remaining.isdigit() else None, reset_at, families, counted, status)


def translate(exc: BaseException, call: Call) -> MastodonError:
    """Mastodon.py's exception for `call` as one of our typed errors."""
    response, endpoint = call.response, call.endpoint
    if isinstance(exc, mastodon.MastodonNetworkError) or response is None:
        return RetryableError(f"{call.method} {endpoint}: {exc}", NETWORK_RETRY_SECONDS, None, endpoint)
    status = response.status_code
    message = server_message(response)
    where = f"{call.method} {endpoint} answered {status}: {message}"
    if status == 429:
        now = server_time(response)
        reset_at = parse_reset(response.headers.get("X-RateLimit-Reset")) or now + timedelta(seconds=UNKNOWN_RESET_SECONDS)
        return RateLimitedError(where, reset_at, now, endpoint, rate_limit_of(call).families)
    if isinstance(exc, mastodon.MastodonRatelimitError):
        return MastodonError(f"{call.method} {endpoint}: unusable rate-limit headers ({exc})", status, endpoint)
    if status == 401:
        return UnauthorizedError(where, status, endpoint)
    if status == 403:
        return ForbiddenError(where, REQUIRED_SCOPES.get((call.method, endpoint)), endpoint)
    if status == 404:
        if not mastodon_error_body(response):
            # Not Mastodon's `{"error": ...}`: a wrong INSTANCE_BASE or a proxy, not a vanished record.
            return MastodonError(f"{where} (not a Mastodon answer: check INSTANCE_BASE)", status, endpoint)
        return GoneError(where, status, endpoint)
    if status == 422:
        return UnprocessableError(where, status, endpoint)
    if status >= 500:
        retry_after = response.headers.get("Retry-After", "")
        seconds = float(retry_after) if retry_after.isdigit() else SERVER_ERROR_RETRY_SECONDS
        return RetryableError(where, seconds, status, endpoint)
    return MastodonError(where, status, endpoint)


def mastodon_error_body(response: requests.Response) -> bool:
    """Whether the body is Mastodon's error entity, `{"error": "..."}`."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str)


def server_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def server_time(response: requests.Response) -> datetime:
    """The answer's Date, so a skewed local clock does not stretch or shrink the wait."""
    try:
        return parsedate_to_datetime(response.headers["Date"])
    except (KeyError, TypeError, ValueError):
        return datetime.now(timezone.utc)


def parse_reset(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        reset = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return reset if reset.tzinfo else reset.replace(tzinfo=timezone.utc)


def link_cursors(link: str) -> tuple[str | None, str | None]:
    """(max_id of rel="next", min_id of rel="prev") from a Link header."""
    next_max_id = prev_min_id = None
    for entry in requests.utils.parse_header_links(link) if link else []:
        query = parse_qs(urlsplit(entry.get("url", "")).query)
        if entry.get("rel") == "next" and "max_id" in query:
            next_max_id = query["max_id"][0]
        elif entry.get("rel") == "prev" and "min_id" in query:
            prev_min_id = query["min_id"][0]
    return next_max_id, prev_min_id
