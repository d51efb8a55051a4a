"""rq-dashboard on port 9181, behind HTTP basic auth checked in constant time."""

from __future__ import annotations

import hmac

from flask import Flask, Response, request
from rq_dashboard.cli import make_flask_app
from werkzeug.serving import run_simple

from modwatch.settings import Settings


def build_dashboard(settings: Settings) -> Flask:
    password = settings.dashboard_password or settings.api_key
    if password is None:
        raise SystemExit("DASHBOARD_PASSWORD (or API_KEY) must be set: rq-dashboard is never served without auth")
    app = make_flask_app(None, None, None, "")
    app.config["RQ_DASHBOARD_REDIS_URL"] = [settings.effective_redis_url]
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

    return app


def serve_dashboard(settings: Settings, host: str, port: int) -> None:
    from rq_dashboard.web import setup_rq_connection

    app = build_dashboard(settings)
    setup_rq_connection(app)
    run_simple(host, port, app, threaded=True)
