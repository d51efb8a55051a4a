"""The simulator's HTTP API: the Mastodon endpoints modwatch uses plus `/_sim/` controls for tests.

Every Mastodon answer carries the X-RateLimit-* headers; errors are `{"error": "..."}` like Rails
renders them. Mastodon.py requests some paths with a trailing slash, so both spellings are routed.
"""

from __future__ import annotations

import bisect
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, BackgroundTasks, Body, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modwatch.simulator import entities, stream, webhooks
from modwatch.simulator.ratelimit import PAGING_PARAMS, Caller, Verdict
from modwatch.simulator.state import Rule, SimState, Token

ADMIN_ACCOUNT_STATUSES = {"active", "pending", "disabled", "silenced", "suspended"}
REPORT_CATEGORIES = {"spam", "violation", "legal", "other"}
MAX_COMMENT = 1000
TRUE = {"1", "true", "True", "on", "yes"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def not_found() -> ApiError:
    return ApiError(404, "Record not found")


def create_app(state: SimState) -> FastAPI:
    app = FastAPI(title="Mastodon API simulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.sim = state

    def error_response(request: Request, status: int, message: str, extra: dict[str, str] | None = None) -> JSONResponse:
        headers = {**getattr(request.state, "ratelimit_headers", {}), **(extra or {})}
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "request"
        return error_response(request, 422, f"Validation failed: {where}: {first['msg']}")

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # No route matched, so no guard ran; Mastodon throttles before routing, so count it here.
        if not hasattr(request.state, "ratelimit_headers"):
            request.state.ratelimit_headers = count(state, request, datetime.now(timezone.utc)).headers()
        return error_response(request, exc.status_code, str(exc.detail))

    app.include_router(mastodon_router(state))
    app.include_router(stream.streaming_router(state))
    app.include_router(control_router(state))
    app.include_router(stream.control_router(state))
    return app


def guard(state: SimState):
    """Faults, then Mastodon's throttles, then growth; rate-limit headers go on every answer."""

    def dependency(request: Request, response: Response) -> None:
        now = datetime.now(timezone.utc)
        faults = state.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        fault = faults.draw()
        if fault == "timeout":
            time.sleep(faults.timeout_seconds)
        verdict = count(state, request, now)
        if fault == "ratelimit":
            # An injected 429 answers as Rack::Attack's throttled_responder does: Remaining 0, its window's reset.
            verdict = Verdict(False, verdict.limit, 0, verdict.reset_at, verdict.throttle)
        request.state.ratelimit_verdict = verdict
        request.state.ratelimit_headers = verdict.headers()
        response.headers.update(verdict.headers())
        if fault == "error":
            raise ApiError(503, "Service Unavailable (injected fault)")
        if not verdict.allowed:
            raise ApiError(429, "Too many requests")
        state.catch_up(now)

    return dependency


def count(state: SimState, request: Request, now: datetime) -> Verdict:
    """One request on every throttle that applies: per token and user when the token is valid, per address
    otherwise, and the paging throttle when the query pages."""
    value = bearer(request)
    token = state.tokens.get(value or "")
    paging = any(request.query_params.get(name) for name in PAGING_PARAMS)
    caller = Caller(token.value if token else None, token.account_id if token else None,
                    request.client.host if request.client else "-", paging)
    return state.limits.hit(caller, now)


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def mastodon_router(state: SimState) -> APIRouter:
    router = APIRouter(dependencies=[Depends(guard(state))])

    def user(request: Request) -> Token:
        token = state.tokens.get(bearer(request) or "")
        if token is None:
            raise ApiError(401, "The access token is invalid")
        return token

    def admin(token: Token = Depends(user)) -> Token:
        if not token.admin:
            raise ApiError(403, "This action is not allowed")
        return token

    def account_or_404(account_id: str):
        record = state.accounts.get(parse_id(account_id, "id") or 0)  # a path segment is never empty; no id is 0
        if record is None:
            raise not_found()
        return record

    @router.get("/api/v1/instance")
    @router.get("/api/v1/instance/")
    def instance_v1(request: Request) -> dict:
        with state.lock:
            return entities.instance_v1(state, streaming_url(request))

    @router.get("/api/v2/instance")
    @router.get("/api/v2/instance/")
    def instance_v2(request: Request) -> dict:
        with state.lock:
            return entities.instance_v2(state, streaming_url(request))

    @router.get("/api/v1/timelines/public")
    def public_timeline(request: Request, response: Response) -> list:
        """Mastodon's PublicFeed: public posts, newest first; `local`/`remote`/`only_media`; 20, at most 40."""
        local = request.query_params.get("local") in TRUE
        remote = request.query_params.get("remote") in TRUE
        only_media = request.query_params.get("only_media") in TRUE
        limit = limit_of(request, 20, 40)
        with state.lock:
            page = timeline_page(request, state, limit, lambda s: s.visibility == "public"
                                 and (not local or state.accounts[s.account_id].domain is None)
                                 and (not remote or state.accounts[s.account_id].domain is not None)
                                 and (not only_media or bool(s.media_descriptions)))
            set_link(request, response, page, limit)
            return [entities.status(state, s) for s in page]

    @router.get("/api/v1/instance/rules")
    def instance_rules() -> list:
        with state.lock:
            return entities.rules(state)

    @router.get("/api/v1/apps/verify_credentials")
    def app_credentials(token: Token = Depends(user)) -> dict:
        return entities.application(token)

    @router.get("/api/v1/accounts/verify_credentials")
    def account_credentials(token: Token = Depends(user)) -> dict:
        with state.lock:
            return entities.credential_account(state, state.accounts[token.account_id])

    @router.get("/api/v1/accounts/{account_id}")
    def get_account(account_id: str, token: Token = Depends(user)) -> dict:
        with state.lock:
            return entities.account(state, account_or_404(account_id))

    @router.get("/api/v1/accounts/{account_id}/statuses")
    def account_statuses(request: Request, response: Response, account_id: str, token: Token = Depends(user)) -> list:
        with state.lock:
            record = account_or_404(account_id)
            if record.moderation == "suspended":
                return []  # Api::V1::Accounts::StatusesController: an unavailable account has no posts
            limit = limit_of(request, 20, 40)
            visible = [s for s in state.statuses_of(record.id) if state.visible_to_reporter(s)]
            page = paginate(request, visible, limit)
            set_link(request, response, page, limit)
            return [entities.status(state, s) for s in page]

    @router.get("/api/v1/statuses/{status_id}")
    def get_status(status_id: str, token: Token = Depends(user)) -> dict:
        with state.lock:
            record = state.statuses.get(parse_id(status_id, "id") or 0)
            # StatusPolicy#show?: what the caller may not see does not exist for it.
            if record is None or not state.visible_to_reporter(record) \
                    or state.accounts[record.account_id].moderation == "suspended":
                raise not_found()
            return entities.status(state, record)

    @router.get("/api/v2/admin/accounts")
    def admin_accounts(request: Request, response: Response, origin: str | None = None, status: str | None = None,
                       by_domain: str | None = None, token: Token = Depends(admin)) -> list:
        if origin not in (None, "local", "remote"):
            raise ApiError(422, "Validation failed: origin must be local or remote")
        if status is not None and status not in ADMIN_ACCOUNT_STATUSES:
            raise ApiError(422, f"Validation failed: status must be one of {', '.join(sorted(ADMIN_ACCOUNT_STATUSES))}")
        with state.lock:
            chosen = [a for a in state.accounts.values()
                      if (origin is None or (a.domain is None) == (origin == "local"))
                      and (status is None or matches_status(a.moderation, status))
                      and (by_domain is None or a.domain == by_domain)]
            chosen.sort(key=lambda a: a.id, reverse=True)
            limit = limit_of(request, 100, 200)
            page = paginate(request, chosen, limit)
            set_link(request, response, page, limit)
            return [entities.admin_account(state, a) for a in page]

    @router.get("/api/v1/admin/reports")
    def admin_reports(request: Request, response: Response, token: Token = Depends(admin)) -> list:
        resolved = request.query_params.get("resolved") in TRUE
        target = request.query_params.get("target_account_id")
        reporter = request.query_params.get("account_id")
        with state.lock:
            chosen = sorted((r for r in state.reports if (r.action_taken_at is not None) == resolved),
                            key=lambda r: r.id, reverse=True)
            if target:
                chosen = [r for r in chosen if str(r.target_account_id) == target]
            if reporter:
                chosen = [r for r in chosen if str(r.account_id) == reporter]
            limit = limit_of(request, 100, 200)
            page = paginate(request, chosen, limit)
            set_link(request, response, page, limit)
            return [entities.admin_report(state, r) for r in page]

    @router.get("/api/v1/admin/reports/{report_id}")
    def admin_report(report_id: str, token: Token = Depends(admin)) -> dict:
        with state.lock:
            wanted = parse_id(report_id, "id")
            record = next((r for r in state.reports if r.id == wanted), None)
            if record is None:
                raise not_found()
            return entities.admin_report(state, record)

    @router.post("/api/v1/reports")
    @router.post("/api/v1/reports/")
    def file_report(request: Request, response: Response, background: BackgroundTasks, payload: Any = Body(None),
                    token: Token = Depends(user)) -> dict:
        """app/controllers/api/v1/reports_controller.rb and app/services/report_service.rb, in their order:
        the account (404), a suspended target (404), every status visible to the reporter (404), the
        report's validations (422, app/models/report.rb), then the daily report limit (429)."""
        form = report_form(payload)
        now = datetime.now(timezone.utc)
        try:
            with state.lock:
                target = account_or_404(form["account_id"])
                if target.moderation == "suspended":
                    raise not_found()
                visible = {s.id for s in state.statuses_of(target.id) if state.visible_to_reporter(s)}
                if any(i not in visible for i in form["status_ids"]):
                    raise not_found()
                validate_report(state, form)
                if not state.limits.reports.record(f"account:{token.account_id}", now).allowed:
                    raise ApiError(429, "Too many requests")
                record = state.file_report(token.account_id, target.id, form["status_ids"], form["comment"],
                                           form["category"], form["forward"] and target.domain is not None,
                                           form["rule_ids"], now)
        finally:
            # override_rate_limit_headers :create, family: :reports (an `ensure`: errors carry them too).
            shown = state.limits.report_headers(token.account_id, request.state.ratelimit_verdict, now).headers()
            request.state.ratelimit_headers = shown
            response.headers.update(shown)
        if state.config.webhook_target and state.config.webhook_secret:
            background.add_task(webhooks.deliver, state.config.webhook_target, state.config.webhook_secret,
                                "report.created", entities.admin_report(state, record))
        if state.faults.late_error():
            raise ApiError(500, "Internal Server Error (injected after the report was created)")
        return entities.report(state, record)

    return router


def streaming_url(request: Request) -> str:
    """Where this simulator streams: itself (Mastodon announces its STREAMING_API_BASE_URL, wss://...)."""
    return "ws" + str(request.base_url).rstrip("/").removeprefix("http")


def timeline_page(request: Request, state: SimState, limit: int, wanted) -> list:
    """`paginate` over the id-ordered timeline without reading all of it (the firehose makes it long)."""
    max_id = parse_id(request.query_params.get("max_id"), "max_id")
    since_id = parse_id(request.query_params.get("since_id"), "since_id")
    min_id = parse_id(request.query_params.get("min_id"), "min_id")
    ids = state.timeline
    low = bisect.bisect_right(ids, max(since_id or 0, min_id or 0))
    high = bisect.bisect_left(ids, max_id) if max_id is not None else len(ids)
    # min_id: the page just above it, oldest first; otherwise the newest page.
    order = range(low, high) if min_id is not None else range(high - 1, low - 1, -1)
    page = []
    for index in order:
        status = state.statuses.get(ids[index])
        if status is not None and wanted(status):
            page.append(status)
            if len(page) == limit:
                break
    return sorted(page, key=lambda s: s.id, reverse=True)


def matches_status(moderation: str, wanted: str) -> bool:
    # Mastodon's "active" filter means "not suspended": silenced accounts are still active.
    return moderation != "suspended" if wanted == "active" else moderation == wanted


def parse_id(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise ApiError(422, f"Validation failed: {name} must be a numeric id, got {value[:40]!r}")
    return int(value)


def limit_of(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.lstrip("-").isdigit():
        raise ApiError(422, f"Validation failed: limit must be an integer, got {raw[:40]!r}")
    # Rails: zero means the default, anything above the maximum is capped.
    return min(abs(int(raw)) or default, maximum)


def paginate(request: Request, records: list, limit: int) -> list:
    """Mastodon's id pagination over newest-first `records`: max_id, since_id, min_id, limit."""
    max_id = parse_id(request.query_params.get("max_id"), "max_id")
    since_id = parse_id(request.query_params.get("since_id"), "since_id")
    min_id = parse_id(request.query_params.get("min_id"), "min_id")
    if max_id is not None:
        records = [r for r in records if r.id < max_id]
    if since_id is not None:
        records = [r for r in records if r.id > since_id]
    if min_id is not None:
        # The page just above min_id, still rendered newest first.
        return [r for r in records if r.id > min_id][-limit:]
    return records[:limit]


def set_link(request: Request, response: Response, page: list, limit: int) -> None:
    """`Link` with rel="next" (older, max_id) when the page is full and rel="prev" (newer, min_id)."""
    if not page:
        return
    kept = {k: v for k, v in request.query_params.items() if k not in {"max_id", "min_id", "since_id"}}
    base = str(request.base_url).rstrip("/") + request.url.path

    def url(cursor: str, value: int) -> str:
        return f"<{base}?{urlencode(sorted({**kept, cursor: str(value)}.items()))}>"

    links = []
    if len(page) >= limit:
        links.append(f'{url("max_id", page[-1].id)}; rel="next"')
    links.append(f'{url("min_id", page[0].id)}; rel="prev"')
    response.headers["Link"] = ", ".join(links)


def report_form(payload: Any) -> dict:
    """Read a report from JSON or from a form body (`status_ids[]=` style, as Mastodon.py sends)."""
    if isinstance(payload, bytes):
        raw = parse_qs(payload.decode("utf-8", "replace"), keep_blank_values=True)
        fields = {k.removesuffix("[]"): (v if k.endswith("[]") else v[-1]) for k, v in raw.items()}
    elif isinstance(payload, dict):
        fields = payload
    elif payload is None:
        fields = {}
    else:
        raise ApiError(422, "Validation failed: body must be a JSON object or a form")
    if not fields.get("account_id"):
        raise ApiError(404, "Record not found")  # Account.find(nil)
    status_ids = [parse_id(str(i), "status_ids") for i in as_list(fields.get("status_ids"))]
    rule_ids = [i for i in (parse_id(str(i), "rule_ids") for i in as_list(fields.get("rule_ids"))) if i is not None]
    # ReportService: rule ids make it a violation report, whatever category was asked for.
    category = "violation" if rule_ids else str(fields.get("category") or "other")
    return {
        "account_id": str(fields["account_id"]),
        "status_ids": [i for i in status_ids if i is not None],
        "comment": str(fields.get("comment") or ""),
        "category": category,
        "forward": str(fields.get("forward", "")).strip() in TRUE,
        "rule_ids": rule_ids or None,
    }


def validate_report(state: SimState, form: dict) -> None:
    """app/models/report.rb: the category enum, the comment's length, and for a violation rule ids that all
    name a rule, kept or discarded (`rules.size == rule_ids&.size`)."""
    if form["category"] not in REPORT_CATEGORIES:
        raise ApiError(422, f"Validation failed: category must be one of {', '.join(sorted(REPORT_CATEGORIES))}")
    if len(form["comment"]) > MAX_COMMENT:
        raise ApiError(422, f"Validation failed: Comment is too long (maximum is {MAX_COMMENT} characters)")
    if form["category"] == "violation":
        known = {r.id for r in state.rules}
        asked = form["rule_ids"] or []
        if not asked or len([i for i in known if i in asked]) != len(asked):
            raise ApiError(422, "Validation failed: Rule ids contains invalid rules")


def as_list(value: Any) -> list:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def control_router(state: SimState) -> APIRouter:
    """Test controls. No auth: they exist only on the simulator."""
    router = APIRouter(prefix="/_sim")

    @router.get("/reports")
    def reports() -> list:
        with state.lock:
            return [entities.admin_report(state, r) for r in state.reports]

    @router.post("/reset")
    def reset() -> dict:
        state.reset()
        return {"accounts": len(state.accounts), "statuses": len(state.statuses)}

    @router.get("/faults")
    def get_faults() -> dict:
        return state.faults.as_dict()

    @router.put("/faults")
    @router.post("/faults")
    def set_faults(changes: dict = Body(...)) -> dict:
        try:
            state.faults.update(**changes)
        except (ValueError, TypeError) as exc:
            raise ApiError(422, f"Validation failed: {exc}") from None
        return state.faults.as_dict()

    @router.get("/accounts")
    def accounts(pattern: str | None = None) -> list:
        """Ground truth: which seeded pattern made each account."""
        with state.lock:
            return [{"id": str(a.id), "acct": a.acct, "pattern": a.pattern}
                    for a in sorted(state.accounts.values(), key=lambda a: a.id) if pattern in (None, a.pattern)]

    @router.post("/accounts")
    def add_account(body: dict = Body(...)) -> dict:
        username = body.get("username")
        if not isinstance(username, str) or not username.isidentifier():
            raise ApiError(422, "Validation failed: username must be letters, digits and underscores")
        with state.lock:
            record = state.add_account(username, body.get("domain") or None, datetime.now(timezone.utc),
                                       display_name=str(body.get("display_name", "")), note=str(body.get("note", "")),
                                       bot=bool(body.get("bot", False)), pattern=str(body.get("pattern", "added")))
            return entities.admin_account(state, record)

    @router.delete("/accounts/{account_id}")
    def remove_account(account_id: str) -> dict:
        if not state.remove_account(parse_id(account_id, "id") or 0):
            raise not_found()
        return {}

    @router.delete("/statuses/{status_id}")
    def delete_status(status_id: str) -> dict:
        """The author deletes a post: it is gone, and a report naming it answers 404."""
        if not state.delete_status(parse_id(status_id, "id") or 0):
            raise not_found()
        return {}

    @router.put("/accounts/{account_id}/moderation")
    def moderate(account_id: str, body: dict = Body(...)) -> dict:
        """`{"moderation": "suspended"}` and the like: what a moderator's action leaves."""
        wanted = body.get("moderation")
        if wanted not in ADMIN_ACCOUNT_STATUSES:
            raise ApiError(422, f"Validation failed: moderation must be one of {', '.join(sorted(ADMIN_ACCOUNT_STATUSES))}")
        with state.lock:
            record = state.accounts.get(parse_id(account_id, "id") or 0)
            if record is None:
                raise not_found()
            record.moderation = wanted
            return entities.admin_account(state, record)

    @router.post("/reports/{report_id}/resolve")
    def resolve(report_id: str) -> dict:
        """A moderator resolves a report (Report#resolve!)."""
        with state.lock:
            wanted = parse_id(report_id, "id")
            record = next((r for r in state.reports if r.id == wanted), None)
            if record is None:
                raise not_found()
            record.action_taken_at = datetime.now(timezone.utc)
            return entities.admin_report(state, record)

    @router.put("/rules")
    def set_rules(body: dict = Body(...)) -> list:
        """Replace the instance rules: `{"rules": [{"id", "text", "discarded"?}]}`; a discarded rule is no
        longer listed but still valid in a report, as Rule.with_discarded makes it."""
        try:
            replaced = [Rule(int(r["id"]), str(r["text"]), discarded=bool(r.get("discarded", False)))
                        for r in body.get("rules", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(422, f"Validation failed: {exc}") from None
        with state.lock:
            state.rules = replaced
            return [entities.rule(r) | {"discarded": r.discarded} for r in state.rules]

    @router.post("/statuses")
    def add_status(body: dict = Body(...)) -> dict:
        account_id = parse_id(str(body.get("account_id", "")), "account_id")
        text = body.get("text")
        if account_id not in state.accounts:
            raise not_found()
        if not isinstance(text, str) or not text:
            raise ApiError(422, "Validation failed: text is required")
        media = body.get("media_descriptions", [])
        if not isinstance(media, list):
            raise ApiError(422, "Validation failed: media_descriptions must be a list (null = no alt text)")
        visibility = body.get("visibility", "public")
        if visibility not in ("public", "unlisted", "private", "direct"):
            raise ApiError(422, "Validation failed: visibility must be public, unlisted, private or direct")
        with state.lock:
            record = state.add_status(account_id, datetime.now(timezone.utc), text, media_descriptions=media,
                                      visibility=visibility)
            return entities.status(state, record)

    @router.put("/webhook")
    def set_webhook(body: dict = Body(...)) -> dict:
        """Where report.created deliveries go (null target turns them off)."""
        state.config.webhook_target = body.get("target_url") or None
        state.config.webhook_secret = body.get("secret") or None
        return {"target_url": state.config.webhook_target}

    return router
