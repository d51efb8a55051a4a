"""`modwatch send-webhook`: one signed test delivery, as Mastodon sends it, then the job it became.

The URL, webhook secret and API key come from the options, else the settings (WEBHOOK_SECRET, API_KEY in
the environment or `.env`), else the `modwatch run` started in this directory, which writes them to
`var/run.json` (readable by its user only) while it runs. Without an API key the job is not followed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from modwatch.settings import ConfigError, Settings, load_settings

RUN_FILE = Path("var/run.json")
DEFAULT_URL = "http://127.0.0.1:8080"
WEBHOOK_PATH = "/webhooks/mastodon_events"
ENDED = {"finished", "failed", "canceled", "stopped"}
EVENTS = ("status.created", "account.created")


@dataclass(frozen=True)
class Target:
    url: str
    secret: str
    api_key: str | None
    instance_base: str | None


def write_run_file(url: str, webhook_secret: str, api_key: str, instance_base: str) -> None:
    """What `modwatch run` tells `send-webhook` about itself; created 0600, as it holds secrets."""
    RUN_FILE.parent.mkdir(exist_ok=True)
    fd = os.open(RUN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": url, "webhook_secret": webhook_secret, "api_key": api_key, "instance_base": instance_base,
                   "pid": os.getpid()}, out)


def remove_run_file() -> None:
    RUN_FILE.unlink(missing_ok=True)


def _running_instance() -> dict[str, Any]:
    try:
        data = json.loads(RUN_FILE.read_text())
        os.kill(int(data["pid"]), 0)  # a file left by a `modwatch run` that was killed says nothing
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return data


def resolve_target(args: argparse.Namespace, settings: Settings) -> Target:
    running = _running_instance()
    url = (args.url or running.get("url") or DEFAULT_URL).rstrip("/")
    secret = args.secret or (settings.webhook_secret and settings.webhook_secret.get_secret_value()) \
        or running.get("webhook_secret")
    if not secret:
        raise SystemExit("modwatch send-webhook: no webhook secret: pass --secret, set WEBHOOK_SECRET, "
                         "or start `modwatch run` in this directory")
    api_key = args.api_key or (settings.api_key and settings.api_key.get_secret_value()) or running.get("api_key")
    return Target(url, secret, api_key, settings.instance_base or running.get("instance_base"))


def _published_status(instance_base: str | None) -> dict[str, Any] | None:
    """A recent local post of the instance (its public timeline), so the job analyses an account that exists."""
    if not instance_base:
        return None
    try:
        response = httpx.get(f"{instance_base}/api/v1/timelines/public", params={"local": "true", "limit": 40},
                             timeout=5)
        statuses = response.json() if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return None
    return random.choice(statuses) if isinstance(statuses, list) and statuses else None


def test_delivery(event: str, instance_base: str | None) -> tuple[bytes, str]:
    """A webhook body for `event` whose object was never sent before (deliveries are deduplicated per object
    id), and a line describing it. A status.created carries a real post of the instance when it has one."""
    from modwatch.simulator import entities
    from modwatch.simulator.state import Config, SimState, snowflake
    from modwatch.simulator.webhooks import event_object

    now = datetime.now(timezone.utc)
    obj = _published_status(instance_base) if event == "status.created" else None
    if obj is None:
        obj = event_object(SimState(Config(accounts=20, seed=random.randrange(2**32))), event, random.Random())
    assert obj is not None  # the simulated population always has local accounts and statuses
    fresh_id = str(snowflake(now) + random.randrange(2**16))
    obj["id"] = fresh_id
    if event == "account.created":
        obj["account"]["id"] = fresh_id
        what = f"new account @{obj['username']} ({fresh_id})"
    else:
        what = f"status {fresh_id} by @{obj['account']['acct']}"
    body = json.dumps(entities.envelope(event, obj, now), separators=(",", ":")).encode()
    return body, what


def _workers(client: httpx.Client, target: Target) -> str:
    """What the workers are doing, for a job that waits too long."""
    answer = client.get(f"{target.url}/jobs/workers", headers={"X-API-Key": target.api_key or ""})
    if answer.status_code != 200:
        return f"unknown (GET /jobs/workers answered {answer.status_code})"
    return "; ".join(f"{w['name']} {w['state']} on {','.join(w['queues'])}"
                     + (f" with job {w['current_job_id']}" if w["current_job_id"] else "")
                     for w in answer.json()) or "none registered"


def follow(client: httpx.Client, target: Target, job_id: str, timeout: float) -> int:
    """Print the job's statuses until it ends; 0 when it finished."""
    headers = {"X-API-Key": target.api_key or ""}
    deadline = time.monotonic() + timeout
    last_status = None
    while True:
        response = client.get(f"{target.url}/jobs/jobs/{job_id}", headers=headers)
        if response.status_code != 200:
            print(f"job {job_id}: GET /jobs/jobs/{job_id} answered {response.status_code}: {response.text[:200]}")
            return 1
        job = response.json()
        if job["status"] != last_status:
            last_status = job["status"]
            print(f"job {job_id}: {last_status}")
        if last_status in ENDED:
            break
        if time.monotonic() >= deadline:
            print(f"job {job_id}: still {last_status} after {timeout:g} s; workers: {_workers(client, target)}")
            return 1
        time.sleep(0.3)
    if job.get("result") is not None:
        print(f"  result: {json.dumps(job['result'])}")
    if job.get("exc_info"):
        print(f"  error: {job['exc_info'].strip().splitlines()[-1]}")
    print(f"  trace:  {target.url}/jobs/jobs/{job_id}/trace")
    return 0 if last_status == "finished" else 1


def send_webhook(args: argparse.Namespace) -> int:
    from modwatch.simulator.webhooks import signature

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(f"modwatch: configuration error: {exc}") from None
    target = resolve_target(args, settings)
    body, what = test_delivery(args.event, target.instance_base)
    headers = {"Content-Type": "application/json", "X-Hub-Signature": signature(target.secret, body),
               "User-Agent": "modwatch send-webhook"}
    with httpx.Client(timeout=10) as client:
        try:
            response = client.post(target.url + WEBHOOK_PATH, content=body, headers=headers)
            if response.status_code != 202:
                print(f"{args.event} for {what}: {target.url}{WEBHOOK_PATH} answered {response.status_code}: "
                      f"{response.text[:300]}")
                return 1
            answer = response.json()
            print(f"sent {args.event} for {what} to {target.url}{WEBHOOK_PATH}: 202, job {answer['job_id']}, "
                  f"trace {answer.get('trace_id')}")
            if args.no_follow:
                return 0
            if not target.api_key:
                print("not following the job: no API key (pass --api-key or set API_KEY)")
                return 0
            return follow(client, target, answer["job_id"], args.timeout)
        except httpx.HTTPError as exc:
            raise SystemExit(f"modwatch send-webhook: {target.url} did not answer ({exc}); is modwatch running?") \
                from None


def register(sub: argparse._SubParsersAction) -> None:
    text = "Sign and send a test webhook delivery, then follow the job it became."
    command = sub.add_parser("send-webhook", help=text, description=text + " " + __doc__.split("\n\n")[1])
    command.set_defaults(func=send_webhook)
    command.add_argument("--url", help=f"modwatch's base URL (default: the running `modwatch run`, else {DEFAULT_URL})")
    command.add_argument("--event", choices=EVENTS, default="status.created",
                         help="status.created (default): a post of the instance under a new id; "
                              "account.created: an account that does not exist on the instance")
    command.add_argument("--secret", help="webhook secret (default: WEBHOOK_SECRET, else the running `modwatch run`)")
    command.add_argument("--api-key", help="API key to follow the job (default: API_KEY, else the running `modwatch run`)")
    command.add_argument("--timeout", type=float, default=60, help="seconds to wait for the job to end")
    command.add_argument("--no-follow", action="store_true", help="only send")
