"""The client against recorded Mastodon answers replayed over HTTP, and against the simulator."""

import json
from datetime import datetime, timezone

import pytest
from prometheus_client import REGISTRY

from cassette_replay import interactions, recorded_json
from isolation import mastodon_recordings
from modwatch.mastodon import errors
from modwatch.mastodon.client import MastodonClient, link_cursors
from modwatch.mastodon.transport import endpoint_template
from modwatch.simulator.server import running

RECORDINGS = mastodon_recordings()


def client(replay) -> MastodonClient:
    return MastodonClient(replay.base_url, "test-token", timeout=5)


def matching(method: str, template: str):
    """Every recorded 2xx interaction, over all cassettes, for one endpoint template."""
    for path in sorted((RECORDINGS / "cassettes").glob("*.yaml")):
        for interaction in interactions(path.name):
            request = interaction["request"]
            uri = request["uri"].split("?")[0].split("localhost:3000", 1)[1]
            if request["method"] == method and endpoint_template(uri) == template and interaction["response"]["status"]["code"] < 400:
                yield pytest.param(interaction, id=f"{path.stem}:{request['uri'].split('3000')[1][:60]}")


def test_every_recorded_body_is_json():
    count = 0
    for path in sorted((RECORDINGS / "cassettes").glob("*.yaml")):
        for interaction in interactions(path.name):
            assert recorded_json(interaction) is not None or interaction["response"]["body"]["string"] == "null"
            count += 1
    for path in list((RECORDINGS / "docs-examples").glob("*.json")) + list((RECORDINGS / "webhooks").glob("*.body.json")):
        assert isinstance(json.loads(path.read_text()), (dict, list))
    assert count > 100


@pytest.mark.parametrize("interaction", list(matching("GET", "/api/v2/admin/accounts")))
def test_admin_accounts_pages(replay, interaction):
    replay.serve(interaction)
    page = client(replay).admin_accounts("local")
    assert page.items == recorded_json(interaction)
    link = interaction["response"]["headers"].get("link", [""])[0]
    assert (page.next_max_id, page.prev_min_id) == link_cursors(link)
    assert replay.requests[-1][1].startswith("/api/v2/admin/accounts?origin=local&limit=100")


@pytest.mark.parametrize("interaction", list(matching("GET", "/api/v1/accounts/:id/statuses")))
def test_account_statuses(replay, interaction):
    replay.serve(interaction)
    assert client(replay).account_statuses("117020565966271181", limit=5) == recorded_json(interaction)


@pytest.mark.parametrize("interaction", list(matching("GET", "/api/v1/accounts/:id")))
def test_account(replay, interaction):
    replay.serve(interaction)
    account_id = interaction["request"]["uri"].split("?")[0].rstrip("/").rsplit("/", 1)[1]
    assert client(replay).account(account_id) == recorded_json(interaction)


def test_link_cursors_from_recorded_next_and_prev():
    interaction = next(i for i in interactions("test_fetch_next_previous.yaml") if "limit=5&max_id" in i["request"]["uri"])
    assert link_cursors(interaction["response"]["headers"]["link"][0]) == ("117020580452511285", "117020580481736214")
    assert link_cursors("") == (None, None)


@pytest.mark.parametrize("interaction", list(matching("POST", "/api/v1/reports")))
def test_file_report(replay, interaction):
    replay.serve(interaction)
    report = client(replay).file_report("117020565966271181", ["117020583182779033"], "makes the bad post")
    assert report == recorded_json(interaction) and isinstance(report["id"], str)
    assert replay.requests[-1] == ("POST", "/api/v1/reports/")


@pytest.mark.parametrize("interaction", list(matching("GET", "/api/v1/admin/reports")))
def test_admin_reports(replay, interaction):
    replay.serve(interaction)
    assert client(replay).admin_reports() == recorded_json(interaction)


@pytest.mark.parametrize("interaction", list(matching("GET", "/api/v1/accounts/verify_credentials")))
def test_verify_credentials_and_ratelimit_headers(replay, interaction):
    replay.serve(interaction)
    api = client(replay)
    assert api.verify_credentials() == recorded_json(interaction)
    headers = interaction["response"]["headers"]
    limit = api.ratelimit
    assert (limit.limit, limit.remaining) == (int(headers["x-ratelimit-limit"][0]), int(headers["x-ratelimit-remaining"][0]))
    assert limit.reset_at == datetime.fromisoformat(headers["x-ratelimit-reset"][0].replace("Z", "+00:00"))


def test_instance_and_version(replay):
    v1, v2 = interactions("test_verify_version.yaml")
    replay.serve(v1, v2)
    assert client(replay).check_version() == "4.6.4"
    replay.serve(interactions("test_instance.yaml")[0])
    assert client(replay).instance()["version"] == "4.6.4"


def test_too_old_version_is_refused(replay):
    v1, v2 = interactions("test_verify_version.yaml")
    old = json.loads(json.dumps(v1))
    old["response"]["body"]["string"] = old["response"]["body"]["string"].replace('"4.6.4"', '"3.5.3"')
    replay.serve(old, v2)
    with pytest.raises(errors.IncompatibleVersionError, match="3.5.3"):
        client(replay).check_version()


@pytest.mark.parametrize("cassette, error, message", [
    ("test_home_tl_anonymous_throws.yaml", errors.UnauthorizedError, "The access token is invalid"),
    ("test_status_missing.yaml", errors.GoneError, "Not Found"),
    ("test_status_empty.yaml", errors.UnprocessableError, "バリデーション"),
])
def test_recorded_errors_are_typed(replay, cassette, error, message):
    failed = next(i for i in interactions(cassette) if i["response"]["status"]["code"] >= 400)
    replay.serve(failed)
    with pytest.raises(error, match=message) as caught:
        client(replay).verify_credentials()
    assert caught.value.status == failed["response"]["status"]["code"]


def recorded_error(status: int, message: str, headers: dict | None = None) -> dict:
    return {"response": {"status": {"code": status}, "body": {"string": json.dumps({"error": message})},
                         "headers": {k: [v] for k, v in (headers or {}).items()}}}


def test_429_carries_reset_time_and_counts(replay):
    replay.serve(recorded_error(429, "Too many requests", {"X-RateLimit-Reset": "2099-01-01T00:00:00.000Z",
                                                            "X-RateLimit-Remaining": "0"}))
    before = REGISTRY.get_sample_value("modwatch_mastodon_rate_limited_total", {"endpoint": "/api/v1/admin/reports"}) or 0
    with pytest.raises(errors.RateLimitedError) as caught:
        client(replay).admin_reports()
    assert caught.value.reset_at == datetime(2099, 1, 1, tzinfo=timezone.utc)
    assert caught.value.retry_after_seconds > 0
    assert REGISTRY.get_sample_value("modwatch_mastodon_rate_limited_total", {"endpoint": "/api/v1/admin/reports"}) == before + 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retryable(replay, status):
    replay.serve(recorded_error(status, "oops"))
    with pytest.raises(errors.RetryableError) as caught:
        client(replay).admin_accounts("remote")
    assert caught.value.status == status and caught.value.retry_after_seconds > 0
    assert not isinstance(caught.value, errors.RateLimitedError)


def test_forbidden_names_the_missing_scope(replay):
    replay.serve(recorded_error(403, "This action is not allowed"))
    with pytest.raises(errors.ForbiddenError) as caught:
        client(replay).file_report("1", [], "x")
    assert caught.value.missing_scope == "write:reports"


def test_unreachable_instance_is_retryable():
    with pytest.raises(errors.RetryableError):
        MastodonClient("http://127.0.0.1:9", "t", timeout=1).check_version()


def test_against_the_simulator_end_to_end():
    with running(accounts=40, seed=2) as sim:
        api = MastodonClient(sim.base_url, "sim-admin-token", timeout=5)
        assert api.check_version() == "4.3.2"
        seen, cursor = [], None
        while True:
            page = api.admin_accounts("local", max_id=cursor, limit=7)
            seen += [int(a["id"]) for a in page.items]
            if page.next_max_id is None:
                break
            cursor = page.next_max_id
        assert seen == sorted(seen, reverse=True)
        assert len(seen) == sum(1 for a in sim.state.accounts.values() if a.domain is None)
        newest = api.admin_accounts("local", limit=1)
        assert api.admin_accounts("local", min_id=newest.prev_min_id).items == []
        with pytest.raises(errors.ForbiddenError):
            MastodonClient(sim.base_url, "sim-user-token").admin_accounts("remote")
        sim.state.faults.update(timeout_ratio=1, timeout_seconds=1)
        with pytest.raises(errors.RetryableError):
            MastodonClient(sim.base_url, "sim-admin-token", timeout=0.2).instance()
        sim.state.faults.update(timeout_ratio=0)
