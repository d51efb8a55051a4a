"""Liveness, readiness and the Prometheus endpoint of the API process."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel

from modwatch.connection import get_redis
from modwatch.jobs.queues import PRIORITY
from modwatch.storage.db import check_database_writable
from modwatch.telemetry import queue_stats

router = APIRouter(tags=["health"])
# Queue health is read by the API at scrape time: one scrape target for it, true whatever the workers do.
queue_stats.register_collector(PRIORITY)


class Alive(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    # "ok", or "error: <exception class>" for each of redis and database.
    checks: dict[str, str]


@router.get("/livez")
def livez() -> Alive:
    """The process is up and serving."""
    return Alive()


@router.get("/readyz", responses={503: {"model": Readiness,
                                        "description": "Redis does not answer or the database refuses a write"}})
def readyz(response: Response) -> Readiness:
    """Ready when Redis answers a PING and the database accepts a write (docs/oncall.md, probes)."""
    checks: dict[str, str] = {}
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason is reported
        checks["redis"] = f"error: {type(exc).__name__}"
    try:
        check_database_writable()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    response.status_code = 200 if ready else 503
    return Readiness(status="ok" if ready else "unavailable", checks=checks)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format, or OpenMetrics (with exemplars) when the scraper asks for it."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(REGISTRY), media_type=content_type)
