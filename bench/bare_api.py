"""The webhook baseline: a bare FastAPI sync endpoint that only enqueues, served like `modwatch api`.

    python bench/bare_api.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import Body, FastAPI
from rq import Queue

from modwatch.connection import get_redis

app = FastAPI()


@app.post("/webhooks/mastodon_events", status_code=202)
def enqueue(payload: dict[str, Any] = Body(...)) -> dict[str, str]:
    job = Queue("webhooks", connection=get_redis()).enqueue("modwatch.jobs.tasks.process_new_status", payload["object"])
    return {"status": "queued", "job_id": job.id}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
