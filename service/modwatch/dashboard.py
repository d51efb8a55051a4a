"""rq-dashboard on port 9181, behind HTTP basic auth checked in constant time, read-only by default.

A browser keeps sending basic-auth credentials to the dashboard's origin, so any page the
operator visits could post to it (rq-dashboard has no CSRF token): empty a queue, delete a job.
Read-only (DASHBOARD_READ_ONLY, the default) refuses every state-changing route: the /jobs API
requeues and cancels with the API key, which a browser never sends by itself. With writes on,
a state-changing request must come from the dashboard's own pages: `Sec-Fetch-Site:
same-origin`, else an `Origin`, else a `Referer` on the dashboard's own origin; none is a refusal.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Flask, Response, request
from rq_dashboard.cli import make_flask_app
from werkzeug.serving import run_simple

from modwatch.settings import Settings

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# rq-dashboard's one state-changing route that also answers GET: requeue every failed job.
STATE_CHANGING_GETS = {"rq_dashboard.requeue_all"}


def changes_state() -> bool:
    return request.method not in SAFE_METHODS or request.endpoint in STATE_CHANGING_GETS


def same_origin() -> bool:
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    own = urlsplit(request.host_url)
    offered = request.headers.get("Origin") or request.headers.get("Referer")
    if not offered or offered == "null":
        return False
    parts = urlsplit(offered)
    return (parts.scheme, parts.netloc) == (own.scheme, own.netloc)


def build_dashboard(settings: Settings) -> Flask:
    password = settings.dashboard_password or settings.api_key
    if password is None:
        raise SystemExit("DASHBOARD_PASSWORD (or API_KEY) must be set: rq-dashboard is never served without auth")
    app = make_flask_app(None, None, None, "")
    app.config["RQ_DASHBOARD_REDIS_URL"] = [settings.effective_redis_url]
    # rq-dashboard's own switch hides its delete and empty buttons.
    app.config["RQ_DASHBOARD_DISABLE_DELETE"] = settings.dashboard_read_only
    expected_user = settings.dashboard_username.encode()
    expected_password = password.get_secret_value().encode()

    @app.before_request
    def basic_auth() -> Response | None:
        auth = request.authorization
        user_ok = auth is not None and hmac.compare_digest((auth.username or "").encode(), expected_user)
        password_ok = auth is not None and hmac.compare_digest((auth.password or "").encode(), expected_password)
        if user_ok and password_ok:
            return None
        return Response("authentication required", 401, {"WWW-Authenticate": 'Basic realm="modwatch rq-dashboard"'})

    @app.before_request
    def refuse_writes() -> Response | None:
        if not changes_state():
            return None
        if settings.dashboard_read_only:
            return Response("rq-dashboard is read-only (DASHBOARD_READ_ONLY=true): requeue or cancel through the "
                            "/jobs API", 403)
        if not same_origin():
            return Response("cross-site request refused: state-changing requests must come from the dashboard's "
                            "own pages (Origin or Referer on its origin)", 403)
        return None

    return app


def serve_dashboard(settings: Settings, host: str, port: int) -> None:
    from rq_dashboard.web import setup_rq_connection

    app = build_dashboard(settings)
    setup_rq_connection(app)
    run_simple(host, port, app, threaded=True)
