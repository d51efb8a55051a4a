"""The /jobs API: queues, jobs, recurring schedules, manual triggers and workers.

Every route needs the API key. Listing fetches job ids from one registry page, then all jobs in
one pipelined round trip (`Job.fetch_many`), never one request per job.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal, get_args
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result
from rq.worker import Worker

from modwatch.api import trace_page
from modwatch.api.deps import MAX_OFFSET, require_api_key, settings_dependency
from modwatch.api.problems import AUTHENTICATED, problem, unprocessable
from modwatch.api.strictjson import StrictJSONRoute
from modwatch.connection import get_redis
from modwatch.jobs import scheduler
from modwatch.jobs.enqueue import JOB_OPTIONS
from modwatch.jobs.queues import PRIORITY, get_queue
from modwatch.jobs.registry import TRIGGERABLE
from modwatch.settings import Settings
from modwatch.telemetry.job_traces import job_trace_ids
from modwatch.telemetry.rq_tracing import is_recurring
from modwatch.telemetry.trace_ids import current_trace_id
from modwatch.telemetry.trace_store import TRACE_TTL_SECONDS, load_traces

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[Depends(require_api_key)], route_class=StrictJSONRoute,
                   responses=AUTHENTICATED)
NO_JOB: dict[int | str, dict[str, Any]] = {404: problem("No such job (never existed, or expired)")}

StatusName = Literal["queued", "started", "scheduled", "deferred", "failed", "finished", "canceled"]
STATUSES: tuple[StatusName, ...] = get_args(StatusName)
# How much of a traceback or result a job view shows; the rest stays in Redis.
EXCERPT_CHARS = 4000


def _registry(queue_name: str, status: str) -> Any:
    queue = get_queue(queue_name)
    return {
        "started": queue.started_job_registry,
        "scheduled": queue.scheduled_job_registry,
        "deferred": queue.deferred_job_registry,
        "failed": queue.failed_job_registry,
        "finished": queue.finished_job_registry,
        "canceled": queue.canceled_job_registry,
    }[status]


def _count(queue_name: str, status: str) -> int:
    if status == "queued":
        return get_queue(queue_name).count
    return _registry(queue_name, status).count


def _job_ids(queue_name: str, status: str, offset: int, limit: int) -> list[str]:
    if status == "queued":
        return get_queue(queue_name).get_job_ids(offset=offset, length=limit)
    return _registry(queue_name, status).get_job_ids(start=offset, end=offset + limit - 1)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def _excerpt(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text[-EXCERPT_CHARS:]


class QueueView(BaseModel):
    name: str
    priority: int = Field(description="0 first: workers take jobs from lower numbers first")
    counts: dict[StatusName, int]


class JobSummary(BaseModel):
    id: str
    function: str | None
    queue: str
    status: str | None
    enqueued_at: str | None
    started_at: str | None
    ended_at: str | None


class JobPage(BaseModel):
    queue: str
    status: StatusName
    total: int
    offset: int
    limit: int
    jobs: list[JobSummary]


class TraceIds(BaseModel):
    created: str | None
    executions: list[str]


class TraceLink(BaseModel):
    trace_id: str
    trace_url: str | None


class JobDetail(JobSummary):
    description: str | None
    args: list[Any]
    kwargs: dict[str, Any]
    timeout: int | float | None
    result_ttl: int | None
    failure_ttl: int | None
    retries_left: int | None
    retry_intervals: list[int] | None
    worker_name: str | None
    result: str | None = Field(description=f"The return value's repr, its last {EXCERPT_CHARS} characters")
    exc_info: str | None = Field(description=f"The traceback, its last {EXCERPT_CHARS} characters")
    trace_id: str | None
    trace_ids: TraceIds
    trace_url: str | None
    recent_runs: list[TraceLink] | None = Field(None, description="Recurring jobs only (absent for others): "
                                                               "the latest runs' traces, newest first")


class JobTraces(BaseModel):
    job_id: str
    kept_seconds: int
    traces: list[dict[str, Any]] = Field(description="Each trace id with its kept spans in start order")


class JobState(BaseModel):
    id: str
    status: str


def job_summary(job: Job) -> JobSummary:
    return JobSummary(
        id=job.id,
        function=job.func_name,
        queue=job.origin,
        status=job.get_status(refresh=False),
        enqueued_at=_iso(job.enqueued_at),
        started_at=_iso(job.started_at),
        ended_at=_iso(job.ended_at),
    )


# How many of a recurring job's latest runs its view lists.
RECENT_RUNS = 10


def job_detail(job: Job, settings: Settings) -> JobDetail:
    traces = job_trace_ids(job)
    executions = traces.get("executions") or []
    # A recurring job's creation is its registration, long ago: what on-call wants is its latest run.
    if is_recurring(job):
        trace_id = (executions or [traces.get("created")])[-1]
    else:
        trace_id = traces.get("created") or (executions or [None])[-1]
    latest = job.latest_result()
    result = exc_info = None
    if latest is not None and latest.type == Result.Type.SUCCESSFUL:
        result = _excerpt(latest.return_value)
    elif latest is not None:
        exc_info = _excerpt(latest.exc_string)
    detail = JobDetail(
        **job_summary(job).model_dump(),
        description=job.description,
        args=list(job.args),
        kwargs=job.kwargs,
        timeout=job.timeout,
        result_ttl=job.result_ttl,
        failure_ttl=job.failure_ttl,
        retries_left=job.retries_left,
        retry_intervals=job.retry_intervals,
        worker_name=job.worker_name,
        result=result,
        exc_info=exc_info,
        trace_id=trace_id,
        trace_ids=TraceIds.model_validate(traces),
        trace_url=_trace_url(job.id, trace_id, settings),
    )
    if is_recurring(job):  # set only here: for other jobs the route leaves the unset field out
        detail.recent_runs = [TraceLink(trace_id=run, trace_url=_trace_url(job.id, run, settings))
                              for run in reversed(executions[-RECENT_RUNS:])]
    return detail


def _trace_url(job_id: str, trace_id: str | None, settings: Settings) -> str | None:
    if not trace_id:
        return None
    if settings.local_traces:
        return f"/jobs/jobs/{quote(job_id, safe='')}/trace"  # shown by this API from its own store
    # The template may carry raw JSON in its query (Grafana Explore's default): percent-encode it.
    url = urlsplit(settings.trace_url_template.format(trace_id=trace_id))
    return urlunsplit(url._replace(query=quote(unquote(url.query), safe="=&")))


def _fetch(job_id: str) -> Job:
    try:
        return Job.fetch(job_id, connection=get_redis())
    except (NoSuchJobError, ValueError):
        raise HTTPException(404, f"no job {job_id!r} (never existed, or expired)") from None


@router.get("/queues")
def list_queues() -> list[QueueView]:
    """Each queue with its job count per status, in worker priority order."""
    return [
        QueueView(name=name, priority=rank, counts={status: _count(name, status) for status in STATUSES})
        for rank, name in enumerate(PRIORITY)
    ]


@router.get("/jobs", responses={404: problem("No such queue")})
def list_jobs(
    queue: str = Query(..., description=f"One of: {', '.join(PRIORITY)}"),
    status: StatusName = Query("queued"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=500),
) -> JobPage:
    """One page of jobs in a queue with a given status."""
    if queue not in PRIORITY:
        raise HTTPException(404, f"no queue {queue!r}; known: {', '.join(PRIORITY)}")
    total = _count(queue, status)
    ids = _job_ids(queue, status, offset, limit)
    jobs = [job for job in Job.fetch_many(ids, connection=get_redis()) if job is not None]
    return JobPage(queue=queue, status=status, total=total, offset=offset, limit=limit,
                   jobs=[job_summary(job) for job in jobs])


@router.get("/jobs/{job_id}", responses=NO_JOB, response_model_exclude_unset=True)
def get_job(job_id: str, settings: Settings = Depends(settings_dependency)) -> JobDetail:
    """One job with its result or error, retries, and the trace ids of its creation and executions."""
    return job_detail(_fetch(job_id), settings)


@router.get("/jobs/{job_id}/trace", status_code=307, response_class=RedirectResponse, responses={
    200: {"description": "With LOCAL_TRACES: the spans of the job's traces (creation, then each execution), "
                         "as JSON, or as an HTML waterfall when the client accepts text/html",
          "model": JobTraces, "content": {"text/html": {}}},
    307: {"description": "Redirect to the job's trace in the trace backend (TRACE_URL_TEMPLATE)"},
    404: problem("No such job, or it carries no trace id"),
})
def open_job_trace(job_id: str, request: Request, settings: Settings = Depends(settings_dependency)) -> Response:
    """The job's trace: redirected to the trace backend, or shown from the local store (LOCAL_TRACES)."""
    job = _fetch(job_id)
    traces = job_trace_ids(job)
    runs = [traces["created"], *traces["executions"]]
    # A recurring job's latest run first (its creation is the registration).
    trace_ids = list(dict.fromkeys(filter(None, reversed(runs) if is_recurring(job) else runs)))
    if not trace_ids:
        raise HTTPException(404, f"job {job_id!r} carries no trace id")
    if not settings.local_traces:
        return RedirectResponse(job_detail(job, settings).trace_url or "", status_code=307)
    kept = load_traces(get_redis(), trace_ids)
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(trace_page.render(job_id, kept))
    return JSONResponse(JobTraces(job_id=job_id, kept_seconds=TRACE_TTL_SECONDS, traces=kept).model_dump())


@router.post("/jobs/{job_id}/cancel", responses={**NO_JOB, 409: problem("The job has already ended")})
def cancel_job(job_id: str) -> JobState:
    """Cancel a queued, scheduled or deferred job; ask the worker to stop a started one."""
    job = _fetch(job_id)
    status = job.get_status()
    if status == JobStatus.STARTED:
        try:
            send_stop_job_command(get_redis(), job.id)
        except InvalidJobOperation as exc:
            raise HTTPException(409, str(exc)) from None
        return JobState(id=job.id, status="stopping")
    if status not in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        raise HTTPException(409, f"job {job_id!r} is {status}; only queued, scheduled, deferred or started jobs can be canceled")
    job.cancel()
    return JobState(id=job.id, status=job.get_status())


@router.post("/jobs/{job_id}/requeue", responses={**NO_JOB, 409: problem("The job is not failed, stopped or canceled")})
def requeue_job(job_id: str) -> JobState:
    """Put a failed, stopped or canceled job back on its queue."""
    job = _fetch(job_id)
    status = job.get_status()
    if status not in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        raise HTTPException(409, f"job {job_id!r} is {status}; only failed, stopped or canceled jobs can be requeued")
    # Through our queue class, so the move is a traced `send` like any other enqueue. RQ files a
    # stopped job in the failed registry (there is no registry of stopped jobs).
    registry = "canceled" if status == JobStatus.CANCELED else "failed"
    _registry(job.origin, registry).remove(job)
    get_queue(job.origin).enqueue_job(job)
    return JobState(id=job.id, status=job.get_status())


class RecurringJob(BaseModel):
    task_name: str
    job_id: str
    registered: bool
    interval: int | None = Field(description="Seconds between runs, when an override is stored")
    next_run_at: str | None
    queue: str


class LaterJob(BaseModel):
    id: str
    queue: str
    run_at: str | None


class Scheduled(BaseModel):
    recurring: list[RecurringJob]
    later: list[LaterJob]


@router.get("/scheduled")
def list_scheduled() -> Scheduled:
    """Recurring jobs (true next run time and interval) and jobs scheduled for a later attempt."""
    connection = get_redis()
    later = []
    for name in PRIORITY:
        registry = get_queue(name).scheduled_job_registry
        for job_id in registry.get_job_ids():
            later.append(LaterJob(id=job_id, queue=name, run_at=_iso(registry.get_scheduled_time(job_id))))
    return Scheduled(recurring=[RecurringJob.model_validate(item) for item in scheduler.recurring_status(connection)],
                     later=later)


class RescheduleRequest(BaseModel):
    task_name: str = Field(description="A recurring job: " + ", ".join(scheduler.RECURRING_NAMES))
    interval: int | None = Field(None, gt=0, le=86400, description="New interval in seconds")
    run_now: bool = Field(False, description="Also run it as soon as possible")


@router.post("/scheduled/reschedule", responses={404: problem("Not a recurring job")})
def reschedule(request: RescheduleRequest) -> RecurringJob:
    """Change a recurring job's interval and/or bring its next run forward."""
    if request.task_name not in scheduler.RECURRING_NAMES:
        raise HTTPException(404, f"{request.task_name!r} is not a recurring job; known: {', '.join(scheduler.RECURRING_NAMES)}")
    if request.interval is None and not request.run_now:
        raise unprocessable("give an interval, run_now, or both")
    return RecurringJob.model_validate(
        scheduler.reschedule(get_redis(), request.task_name, interval=request.interval, run_now=request.run_now))


class Triggerable(BaseModel):
    task_name: str
    description: str
    queue: str
    arguments: dict[str, Any] = Field(description="The JSON schema of the arguments")


class Triggered(BaseModel):
    job_id: str
    queue: str
    status: str | None
    trace_id: str | None


@router.get("/trigger")
def list_triggerable() -> list[Triggerable]:
    """The jobs that can be triggered, with the JSON schema of their arguments."""
    return [
        Triggerable(task_name=name, description=spec.description, queue=JOB_OPTIONS[spec.function].queue,
                    arguments=spec.arguments.model_json_schema())
        for name, spec in sorted(TRIGGERABLE.items())
    ]


@router.post(
    "/trigger/{task_name}",
    status_code=202,
    responses={404: problem("Not a triggerable job")},
)
def trigger(task_name: str, arguments: dict[str, Any] | None = Body(None)) -> Triggered:
    """Enqueue a job from the allowlist in `modwatch.jobs.registry` with validated arguments."""
    triggerable = TRIGGERABLE.get(task_name)
    if triggerable is None:
        raise HTTPException(404, f"{task_name!r} cannot be triggered; allowed: {', '.join(sorted(TRIGGERABLE))}")
    try:
        validated = triggerable.arguments.model_validate(arguments or {})
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise unprocessable("", errors=[{**error, "loc": ("body", *error["loc"])} for error in errors]) from None
    options = JOB_OPTIONS[triggerable.function]
    job = get_queue(options.queue).enqueue(triggerable.function, **validated.model_dump(), **options.enqueue_kwargs())
    return Triggered(job_id=job.id, queue=options.queue, status=job.get_status(refresh=False), trace_id=current_trace_id())


class WorkerView(BaseModel):
    name: str
    hostname: str | None
    pid: int | None
    state: str
    queues: list[str]
    current_job_id: str | None
    last_heartbeat: str | None
    birth: str | None
    successful_jobs: int
    failed_jobs: int


@router.get("/workers")
def list_workers() -> list[WorkerView]:
    """Workers registered in Redis, with state, queues, current job and heartbeat."""
    workers = Worker.all(connection=get_redis())
    return [
        WorkerView(
            name=worker.name,
            hostname=worker.hostname,
            pid=worker.pid,
            state=worker.get_state(),
            queues=worker.queue_names(),
            current_job_id=worker.get_current_job_id(),
            last_heartbeat=_iso(worker.last_heartbeat),
            birth=_iso(worker.birth_date),
            successful_jobs=worker.successful_job_count,
            failed_jobs=worker.failed_job_count,
        )
        for worker in sorted(workers, key=lambda w: w.name)
    ]
