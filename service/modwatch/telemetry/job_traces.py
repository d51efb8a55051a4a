"""Where a job keeps the trace ids of its creation and of each execution (in `job.meta`)."""

from __future__ import annotations

from typing import Any

from rq.job import Job

CREATED_KEY = "trace_id_created"
EXECUTIONS_KEY = "trace_ids_executions"
# Enough to see every retry of a job; a recurring job keeps only its latest runs.
MAX_EXECUTIONS = 20


def job_trace_ids(job: Job) -> dict[str, Any]:
    return {
        "created": job.meta.get(CREATED_KEY),
        "executions": list(job.meta.get(EXECUTIONS_KEY, [])),
    }
