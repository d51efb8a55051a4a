"""No secret ever leaves a process: api, worker and scheduler run with distinctive secrets, get
exercised (webhooks good and bad, errors, /jobs, /moderation/settings, /docs, /openapi.json,
check-config), and every byte they print or answer is searched for the secrets."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import time

import httpx

from faults.support import modwatch, stop
from isolation import free_port, wait_for, wait_http
from modwatch.simulator.server import running

SECRETS = {
    "API_KEY": "apikey-Zq8v1DISTINCT",
    "WEBHOOK_SECRET": "whsecret-Kp3xDISTINCT",
    "MASTODON_ACCESS_TOKEN": "mastotoken-Wm5rDISTINCT",
}


def test_no_secret_in_logs_or_responses(fault_env, tmp_path):
    token = SECRETS["MASTODON_ACCESS_TOKEN"]
    with running(accounts=20, seed=2, admin_token=token) as sim:
        env = {**fault_env, **SECRETS, "INSTANCE_BASE": sim.base_url, "LOG_LEVEL": "DEBUG", "DRY_RUN": "false",
               "QUEUE_STATS_INTERVAL": "2", "POLL_ADMIN_ACCOUNTS_INTERVAL": "2", "POLL_ADMIN_ACCOUNTS_LOCAL_INTERVAL": "2"}
        port = free_port()
        logs = {name: tmp_path / f"{name}.log" for name in ("api", "worker", "scheduler")}
        processes = [modwatch("api", "--host", "127.0.0.1", "--port", str(port), env=env, log=logs["api"]),
                     modwatch("worker", env=env, log=logs["worker"]),
                     modwatch("scheduler", env=env, log=logs["scheduler"])]
        base = f"http://127.0.0.1:{port}"
        bodies: list[str] = []
        try:
            wait_http(f"{base}/livez", processes[0])
            key = {"X-API-Key": SECRETS["API_KEY"]}
            with httpx.Client(base_url=base, timeout=30) as client:
                body = b'{"event":"status.created","object":{"id":"5","account":{"id":"3","username":"x"}}}'
                signature = "sha256=" + hmac.new(SECRETS["WEBHOOK_SECRET"].encode(), body, hashlib.sha256).hexdigest()
                answers = [
                    client.post("/webhooks/mastodon_events", content=body,
                                headers={"Content-Type": "application/json", "X-Hub-Signature": signature}),
                    client.post("/webhooks/mastodon_events", content=body,
                                headers={"Content-Type": "application/json", "X-Hub-Signature": "sha256=bad"}),
                    client.post("/webhooks/mastodon_events", content=b"{", headers={"X-Hub-Signature": signature}),
                    client.get("/jobs/jobs?queue=webhooks", headers=key), client.get("/jobs/queues", headers=key),
                    client.get("/jobs/workers", headers=key), client.get("/jobs/scheduled", headers=key),
                    client.get("/moderation/settings", headers=key), client.get("/moderation/rules", headers=key),
                    client.get("/jobs/jobs?queue=webhooks", headers={"X-API-Key": "wrong"}),
                    client.get("/jobs/jobs?queue=webhooks", headers={"Authorization": f"Bearer {SECRETS['API_KEY']}x"}),
                    client.post("/jobs/trigger/poll_admin_accounts", headers=key, json={}),
                    client.post("/jobs/trigger/analyze_and_maybe_report", headers=key, json={"account_id": "nope"}),
                    client.get("/docs"), client.get("/openapi.json"), client.get("/metrics"), client.get("/readyz"),
                ]
                bodies += [answer.text + str(dict(answer.headers)) for answer in answers]
                assert answers[0].status_code == 202 and answers[3].status_code == 200
                # Let the worker run the webhook job and a few polls against the simulator.
                wait_for(lambda: client.get("/jobs/jobs?queue=webhooks&status=finished", headers=key).json().get("total"),
                         "finished jobs", 60)
                time.sleep(6)
                bodies += [client.get("/jobs/jobs?queue=webhooks&status=finished", headers=key).text,
                           client.get("/jobs/jobs?queue=moderation&status=failed", headers=key).text]
        finally:
            for process in processes:
                stop(process)
        check = subprocess.run([sys.executable, "-m", "modwatch.cli", "check-config"], env=env, capture_output=True,
                               text=True, timeout=60)
    output = {name: path.read_text(errors="replace") for name, path in logs.items()}
    output["check-config"] = check.stdout + check.stderr
    output["responses"] = "\n".join(bodies)
    assert "mastodon" in output["check-config"] and "ok" in output["check-config"]
    assert '"job_id"' in output["worker"]  # the worker did log jobs
    for where, text in output.items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} appears in {where}"
