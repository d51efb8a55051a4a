"""What a job keeps about its traces, in `job.meta`.

- `trace_id_created`: the trace the job was created in (for a recurring job: where it was registered).
- `trace_ids_executions`: the trace of each execution, oldest first.
- `trace_context`: the propagated context of the latest `send` span, which the worker continues.
- `trace_context_registered`: for a recurring job, the context each run's fresh trace links to.
- `request_id`: the HTTP request that created the job, for its log lines.
"""

from __future__ import annotations

from typing import Any

from rq.job import Job

CREATED_KEY = "trace_id_created"
EXECUTIONS_KEY = "trace_ids_executions"
CONTEXT_KEY = "trace_context"
REGISTERED_CONTEXT_KEY = "trace_context_registered"
REQUEST_ID_KEY = "request_id"
# Enough to see every retry of a job; a recurring job keeps only its latest runs.
MAX_EXECUTIONS = 20


def job_trace_ids(job: Job) -> dict[str, Any]:
    return {
        "created": job.meta.get(CREATED_KEY),
        "executions": list(job.meta.get(EXECUTIONS_KEY, [])),
    }


def record_execution(job: Job, trace_id: str) -> int:
    """Append an execution's trace id; returns the attempt number within that trace (1 for the first)."""
    executions = [*job.meta.get(EXECUTIONS_KEY, []), trace_id][-MAX_EXECUTIONS:]
    job.meta[EXECUTIONS_KEY] = executions
    return executions.count(trace_id)
