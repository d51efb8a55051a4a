"""`POST /webhooks/mastodon_events`: Mastodon's signed webhook deliveries.

The intake middleware has read the body under a deadline and a size limit (408, 413) and holds
a delivery slot (503 with Retry-After when none frees up). Then: configured secret (503), content
type (415), signature over the raw body (401), JSON and envelope (400), then dedupe + enqueue
(202, or 503 with Retry-After when Redis is down, so Mastodon redelivers and nothing is lost).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import redis
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from modwatch.api import strictjson
from modwatch.api.body import buffered_body
from modwatch.api.deps import settings_dependency
from modwatch.api.problems import problem
from modwatch.jobs.enqueue import WEBHOOK_JOBS, enqueue_webhook
from modwatch.telemetry.metrics import WEBHOOK_DELIVERIES, kept_series
from modwatch.telemetry.trace_ids import current_trace_id

router = APIRouter(tags=["webhooks"])
log = structlog.get_logger(__name__)

PATH = "/webhooks/mastodon_events"
SIGNATURE_HEADER = "X-Hub-Signature"
RETRY_AFTER_SECONDS = "30"
# Mastodon ids are snowflakes: a 64-bit integer written in decimal, as a string.
MASTODON_ID = re.compile(r"[0-9]{1,20}")
# Events Mastodon can deliver; anything else is counted as `unknown` to keep labels bounded.
KNOWN_EVENTS = {
    "account.approved", "account.created", "account.updated", "report.created", "report.updated",
    "status.created", "status.updated",
}


class WebhookAccepted(BaseModel):
    status: str
    event: str
    job_id: str | None = None
    trace_id: str | None = None


class Envelope(BaseModel):
    event: str
    created_at: str | None = None
    object: dict[str, Any]


ENVELOPE_SCHEMA = {
    "required": True,
    "content": {"application/json": {"schema": Envelope.model_json_schema()}},
}


@kept_series
def deliveries(event: str, outcome: str) -> Any:
    """The delivery counter's series (events and outcomes are closed sets), kept: labels() validates on every call."""
    return WEBHOOK_DELIVERIES.labels(event=event, outcome=outcome)


def _problem(status: int, event: str, outcome: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    deliveries(event, outcome).inc()
    log.info("webhook_rejected", outcome=outcome, status=status, webhook_event=event, detail=detail)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def signature_is_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len("sha256="):].strip().lower().encode(), expected.encode())


def parse_envelope(body: bytes) -> tuple[Envelope | None, str]:
    """The envelope, or None and the reason it is malformed."""
    try:
        data = strictjson.loads(body)
    except ValueError as exc:
        return None, f"body is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return None, "body must be a JSON object {event, created_at, object}"
    if not isinstance(data.get("event"), str) or not data["event"]:
        return None, "field 'event' must be a non-empty string"
    obj = data.get("object")
    if not isinstance(obj, dict):
        return None, "field 'object' must be a JSON object"
    object_id = obj.get("id")
    # ASCII only: str.isdigit() also takes "١٢" and "²", which map to the same job id as other ids.
    if type(object_id) not in (str, int) or not MASTODON_ID.fullmatch(str(object_id)):
        return None, "field 'object.id' must be a Mastodon id (1 to 20 ASCII digits)"
    return Envelope(event=data["event"], created_at=data.get("created_at"), object=obj), ""


def delivery_key(envelope: Envelope) -> str:
    """What makes a delivery unique: the object id; for `*.updated`, also the envelope's `created_at`.

    Mastodon serialises an event's body once and resends it byte for byte
    (app/services/webhook_service.rb, app/workers/webhooks/delivery_worker.rb), so a redelivery
    carries the same `created_at`, while a second edit of the same post or profile is a new event.
    """
    object_id = str(envelope.object["id"])
    if envelope.event.endswith(".updated"):
        version = envelope.created_at or envelope.object.get("edited_at") or envelope.object.get("updated_at")
        if version:
            return f"{object_id}@{version}"
    return object_id


@router.post(
    PATH,
    status_code=202,
    response_model=WebhookAccepted,
    openapi_extra={"requestBody": ENVELOPE_SCHEMA},
    responses={
        400: problem("Malformed JSON or envelope"),
        401: problem("Missing or invalid X-Hub-Signature"),
        413: problem("Body larger than WEBHOOK_MAX_BODY_BYTES"),
        415: problem("Content type is not JSON"),
        503: problem("Webhook secret not configured, Redis unavailable, or no delivery slot free (retry later)"),
    },
)
def mastodon_events(request: Request) -> Any:
    """Receive a Mastodon webhook, verify its signature and enqueue its job once."""
    # Not a dependency: FastAPI runs a sync dependency in a worker thread of its own, a hop
    # between threads that costs more than the rest of the check on this, the busiest route.
    settings = settings_dependency(request)
    if settings.webhook_secret is None:
        return _problem(503, "unknown", "not_configured", "WEBHOOK_SECRET is not configured; refusing webhooks")
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        return _problem(415, "unknown", "malformed", f"content type must be application/json, got {content_type!r}")
    body = buffered_body(request)
    secret = settings.webhook_secret.get_secret_value().encode()
    if not signature_is_valid(secret, body, request.headers.get(SIGNATURE_HEADER)):
        return _problem(401, "unknown", "bad_signature", f"missing or invalid {SIGNATURE_HEADER} signature")
    envelope, reason = parse_envelope(body)
    if envelope is None:
        return _problem(400, "unknown", "malformed", reason)
    event = envelope.event if envelope.event in KNOWN_EVENTS else "unknown"
    if envelope.event not in WEBHOOK_JOBS:
        deliveries(event, "ignored_event").inc()
        return JSONResponse({"status": "ignored", "event": envelope.event}, status_code=202)
    try:
        enqueued = enqueue_webhook(envelope.event, delivery_key(envelope), envelope.object)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return _problem(
            503, event, "unavailable", f"queue unavailable, retry later ({type(exc).__name__})",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    outcome = "duplicate" if enqueued.duplicate else "accepted"
    deliveries(event, outcome).inc()
    log.info("webhook_accepted", webhook_event=event, outcome=outcome, job_id=enqueued.job_id)
    # Built as the documented model, rendered without FastAPI validating it a second time.
    accepted = WebhookAccepted(
        status="duplicate" if enqueued.duplicate else "queued",
        event=envelope.event,
        job_id=enqueued.job_id,
        trace_id=current_trace_id(),
    )
    return JSONResponse(accepted.model_dump(), status_code=202)
