"""Dependencies shared by routers: settings and API key auth."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from modwatch.settings import Settings, get_settings

# Pagination offsets far past any real listing, yet with room to add a page size without
# overflowing the 64-bit integers SQL and Redis take.
MAX_OFFSET = 10**12

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key (API_KEY).")
_bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")
_basic = HTTPBasic(auto_error=False, description="For browsers: the API key as the password, any user name.")


def settings_dependency(request: Request) -> Settings:
    return getattr(request.app.state, "settings", None) or get_settings()


def require_api_key(
    request: Request,
    header_key: str | None = Depends(_api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    basic: HTTPBasicCredentials | None = Depends(_basic),
    settings: Settings = Depends(settings_dependency),
) -> None:
    """Every /jobs, /moderation and admin route: `X-API-Key`, `Authorization: Bearer`, or for a browser HTTP
    basic auth with the API key as password (any user name), as rq-dashboard takes it."""
    if settings.api_key is None:
        # Fail closed: no configured key means nobody gets in.
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "API_KEY is not configured")
    offered = header_key or (bearer.credentials if bearer else None) or (basic.password if basic else None)
    expected = settings.api_key.get_secret_value().encode()
    if not offered or not hmac.compare_digest(offered.encode(), expected):
        # A browser asks its user for a password only when challenged with Basic.
        browser = "text/html" in request.headers.get("accept", "")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid API key (X-API-Key header, Authorization: Bearer, or basic auth password)",
            headers={"WWW-Authenticate": 'Basic realm="modwatch"' if browser else "Bearer"},
        )


def key_fingerprint(settings: Settings) -> str:
    """Who made a change, for the audit log: a short hash of the API key, never the key."""
    assert settings.api_key is not None  # only called behind require_api_key
    return "key:" + hashlib.sha256(settings.api_key.get_secret_value().encode()).hexdigest()[:12]
