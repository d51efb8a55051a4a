"""Entities carry every key of the recorded ones; webhooks verify; a seed gives the same world."""

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx

from isolation import mastodon_recordings
from modwatch.simulator import entities
from modwatch.simulator.state import Config, SimState
from modwatch.simulator.webhooks import send_webhooks, signature
from sim_support import ADMIN, USER, body, find


def assert_keys_cover(recorded: dict, served: dict, where: str = "") -> None:
    missing = set(recorded) - set(served)
    assert not missing, f"{where or 'entity'} lacks {sorted(missing)}"
    for key in ("account", "target_account"):
        if isinstance(recorded.get(key), dict) and isinstance(served.get(key), dict):
            assert_keys_cover(recorded[key], served[key], f"{where}.{key}")


def test_entities_have_the_recorded_keys(sim):
    def get(path: str, headers: dict[str, str] = ADMIN):
        return httpx.get(sim.base_url + path, headers=headers).json()

    admin_accounts = get("/api/v2/admin/accounts?origin=local&limit=5")
    recorded = body(find("test_admin_accounts_v2.yaml", "GET", "/api/v2/admin/accounts?origin=local"))[0]
    assert_keys_cover(recorded, admin_accounts[0], "Admin::Account")
    author = admin_accounts[0]["id"]
    assert_keys_cover(body(find("test_account.yaml", "GET", "/api/v1/accounts/1")), get(f"/api/v1/accounts/{author}"), "Account")
    assert_keys_cover(body(find("test_account.yaml", "GET", "verify_credentials")),
                      get("/api/v1/accounts/verify_credentials"), "CredentialAccount")
    statuses = get(f"/api/v1/accounts/{author}/statuses")
    assert_keys_cover(body(find("test_status.yaml", "GET", "/api/v1/statuses/")), statuses[0], "Status")
    assert_keys_cover(body(find("test_verify_version.yaml", "GET", "/api/v1/instance")), get("/api/v1/instance"), "Instance")
    assert_keys_cover(body(find("test_verify_version.yaml", "GET", "/api/v2/instance")), get("/api/v2/instance"), "InstanceV2")
    assert_keys_cover(body(find("test_app_verify_credentials.yaml", "GET", "apps")), get("/api/v1/apps/verify_credentials"))
    report = httpx.post(sim.base_url + "/api/v1/reports", headers=ADMIN,
                        json={"account_id": author, "status_ids": [statuses[0]["id"]], "comment": "shape"}).json()
    assert_keys_cover(body(find("test_report.yaml", "POST", "/api/v1/reports")), report, "Report")
    admin_report = get("/api/v1/admin/reports")[0]
    assert_keys_cover(body(find("test_admin_reports.yaml", "GET", "/api/v1/admin/reports"))[0], admin_report, "Admin::Report")
    assert_keys_cover(json.loads((mastodon_recordings() / "docs-examples/Rule.example.json").read_text()), get("/api/v1/instance/rules")[0])


def test_remote_admin_accounts_have_null_local_fields(sim):
    remote = httpx.get(sim.base_url + "/api/v2/admin/accounts?origin=remote&limit=1", headers=ADMIN).json()[0]
    example = json.loads((mastodon_recordings() / "docs-examples/webhook-report.created.example.json").read_text())["object"]["target_account"]
    assert {k for k, v in example.items() if v is None} <= {k for k, v in remote.items() if v is None}
    assert remote["account"]["acct"] == f"{remote['username']}@{remote['domain']}"


def test_signature_scheme_matches_the_recorded_deliveries():
    lines = (mastodon_recordings() / "webhooks/signatures.txt").read_text().splitlines()
    secret = lines[0].split(":", 1)[1].strip()
    for line in lines[1:]:
        name, header = line.split("\t")[:2]
        raw = (mastodon_recordings() / "webhooks" / name).read_bytes()
        assert signature(secret, raw) == header.split(": ", 1)[1]


class Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((raw, self.headers["X-Hub-Signature"]))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_are_signed_envelopes_and_reports_trigger_one(sim):
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{server.server_port}/"
    try:
        codes = send_webhooks(sim.state, target, "s3cret", rate_per_second=0, count=4)
        assert codes == [202] * 4
        httpx.put(sim.base_url + "/_sim/webhook", json={"target_url": target, "secret": "s3cret"}).raise_for_status()
        victim = next(a for a in sim.state.accounts.values() if a.pattern == "link_spam")
        httpx.post(sim.base_url + "/api/v1/reports", headers=USER, json={"account_id": str(victim.id)}).raise_for_status()
        deadline = time.monotonic() + 10  # the delivery runs after the answer, in the background
        while len(Receiver.received) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        httpx.put(sim.base_url + "/_sim/webhook", json={"target_url": None})
        server.shutdown()
    events = []
    for raw, header in Receiver.received:
        assert header == "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
        delivery = json.loads(raw)
        assert set(delivery) == {"event", "created_at", "object"}
        events.append(delivery["event"])
        if delivery["event"] != "report.created":
            author = delivery["object"] if delivery["event"] == "account.created" else delivery["object"]["account"]
            assert "@" not in author.get("acct", author.get("username"))  # local objects only
    assert events == ["account.created", "status.created"] * 2 + ["report.created"]
    assert json.loads(Receiver.received[-1][0])["object"]["target_account"]["id"] == str(victim.id)


def world(seed: int) -> str:
    state = SimState(Config(seed=seed, accounts=60), now=datetime(2026, 8, 1, tzinfo=timezone.utc))
    return json.dumps([entities.admin_account(state, a) for a in state.accounts.values()]
                      + [entities.status(state, s) for s in state.statuses.values()])


def test_same_seed_same_world_and_patterns_are_present():
    assert world(3) == world(3)
    assert world(3) != world(4)
    state = SimState(Config(seed=3, accounts=100))
    patterns = {a.pattern for a in state.accounts.values()}
    assert patterns >= {"ordinary", "keyword_spam", "link_spam", "duplicate_burst", "missing_alt_text", "new_account_burst"}
    ids = [s.id for s in sorted(state.statuses.values(), key=lambda s: s.created_at)]
    assert ids == sorted(ids)  # snowflake-like: ids follow time
    burst = [a for a in state.accounts.values() if a.pattern == "duplicate_burst"][0]
    texts = [s.text for s in state.statuses_of(burst.id)]
    assert max(texts.count(t) for t in texts) >= 5
    alt = [a for a in state.accounts.values() if a.pattern == "missing_alt_text"][0]
    assert any(None in s.media_descriptions for s in state.statuses_of(alt.id))


def test_growth_adds_new_records_over_time():
    state = SimState(Config(seed=5, accounts=20, growth_per_minute=6))
    before = len(state.accounts) + len(state.statuses)
    state.catch_up(state.started + timedelta(minutes=1))
    assert state.grown == 6
    assert len(state.accounts) + len(state.statuses) >= before + 6
