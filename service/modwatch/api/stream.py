"""/moderation/stream: the stream consumer's state and what it decided about a post.

A post's decision leads to what made it: the batch (`batch_id`), its trace (`trace_id`, `trace_url`) and, when
the decision started a report, the report job (`job_id`, `job_url`), whose trace is the batch's trace continued.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel

from modwatch.api.deps import require_api_key, settings_dependency
from modwatch.api.problems import AUTHENTICATED, problem
from modwatch.api.strictjson import StrictJSONRoute
from modwatch.connection import get_redis
from modwatch.moderation.stream_analysis import decision_of, last_status_id
from modwatch.redis_keys import STREAM_LEASE_KEY
from modwatch.settings import Settings
from modwatch.storage.models import aware

router = APIRouter(prefix="/moderation/stream", tags=["stream"], dependencies=[Depends(require_api_key)],
                   responses=AUTHENTICATED, route_class=StrictJSONRoute)


class StreamPosition(BaseModel):
    last_status_id: str | None


class StreamState(BaseModel):
    active_consumer: str | None
    streams: dict[str, StreamPosition]


class PostVersion(BaseModel):
    version: str
    account_id: str
    stream: str
    via: str
    decision: str
    score: float
    rules: list[str]
    posted_at: str | None
    received_at: str | None
    decided_at: str | None
    deleted_at: str | None
    batch_id: str
    trace_id: str | None
    trace_url: str | None
    job_id: str | None
    job_url: str | None


class PostDecision(BaseModel):
    status_id: str
    versions: list[PostVersion]


@router.get("")
def stream_state(settings: Settings = Depends(settings_dependency)) -> StreamState:
    """Which consumer holds the lease, and where each stream's recorded decisions end."""
    holder = get_redis().get(STREAM_LEASE_KEY)
    return StreamState(
        active_consumer=holder.decode() if isinstance(holder, bytes) else holder,
        streams={name: StreamPosition(last_status_id=last_status_id(name)) for name in settings.stream_names},
    )


@router.get("/posts/{status_id}", responses={404: problem("The stream consumer decided no post with this id")})
def post_decision(status_id: str = Path(..., pattern=r"^[0-9]{1,20}$"),
                  settings: Settings = Depends(settings_dependency)) -> PostDecision:
    """Every version of a streamed post with its decision, the batch, trace and job that made it."""
    versions = decision_of(status_id)
    if not versions:
        raise HTTPException(404, f"no streamed post {status_id} was decided")
    return PostDecision(status_id=status_id, versions=[_view(row, settings) for row in versions])


def _iso(value: datetime | None) -> str | None:
    moment = aware(value)
    return moment.isoformat() if moment is not None else None


def _view(row: dict[str, Any], settings: Settings) -> PostVersion:
    job_id, trace_id = row["job_id"], row["trace_id"]
    if settings.local_traces:
        # The local store is read per job; a decision that started no job has its trace in the spans only.
        trace_url = f"/jobs/jobs/{job_id}/trace" if job_id and trace_id else None
    else:
        trace_url = settings.trace_url_template.format(trace_id=trace_id) if trace_id else None
    times = {name: _iso(row[name]) for name in ("posted_at", "received_at", "decided_at", "deleted_at")}
    return PostVersion(
        version=row["version"], account_id=row["account_id"], stream=row["stream"], via=row["via"],
        decision=row["decision"], score=row["score"], rules=row["rule_names"], **times,
        batch_id=row["batch_id"], trace_id=trace_id, trace_url=trace_url,
        job_id=job_id, job_url=f"/jobs/jobs/{job_id}" if job_id else None,
    )
