"""The simulator over real HTTP: pagination, errors, tokens, rate limits and faults."""

from urllib.parse import parse_qs, urlsplit

import httpx
import mastodon
import pytest
import requests

from modwatch.simulator.server import running
from sim_support import ADMIN, USER


def get(sim, path, headers=ADMIN, **params):
    return httpx.get(sim.base_url + path, headers=headers, params=params, timeout=10)


def links(response) -> dict[str, dict]:
    return {link["rel"]: parse_qs(urlsplit(link["url"]).query) for link in requests.utils.parse_header_links(response.headers["link"])}


def test_max_id_walk_covers_every_account_once_and_stops(sim):
    seen, params, pages = [], {"limit": "17"}, 0
    while True:
        response = get(sim, "/api/v2/admin/accounts", **params)
        assert response.status_code == 200
        page = response.json()
        pages += 1
        if not page:
            assert "link" not in response.headers  # an empty page has no Link header
            break
        seen += [int(a["id"]) for a in page]
        rel = links(response)
        if "next" not in rel:
            break
        params = {"limit": "17", "max_id": rel["next"]["max_id"][0]}
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == len(sim.state.accounts)
    assert pages >= len(seen) // 17


def test_link_header_matches_mastodons_format(sim):
    response = get(sim, "/api/v2/admin/accounts", origin="local", limit="2")
    page = response.json()
    base = sim.base_url + "/api/v2/admin/accounts"
    assert response.headers["link"] == (
        f'<{base}?limit=2&max_id={page[-1]["id"]}&origin=local>; rel="next", '
        f'<{base}?limit=2&min_id={page[0]["id"]}&origin=local>; rel="prev"'
    )
    assert all(a["domain"] is None for a in page)


def test_min_id_and_since_id_return_the_newer_side(sim):
    everything = [int(a["id"]) for a in get(sim, "/api/v2/admin/accounts", limit="200").json()]
    pivot = everything[10]
    newer_adjacent = [int(a["id"]) for a in get(sim, "/api/v2/admin/accounts", min_id=str(pivot), limit="3").json()]
    assert newer_adjacent == everything[7:10]
    newest = [int(a["id"]) for a in get(sim, "/api/v2/admin/accounts", since_id=str(pivot), limit="3").json()]
    assert newest == everything[:3]


def test_filters_and_limit_bounds(sim):
    remote = get(sim, "/api/v2/admin/accounts", origin="remote", limit="500").json()
    assert remote and all(a["domain"] for a in remote) and len(remote) <= 200
    suspended = get(sim, "/api/v2/admin/accounts", status="suspended").json()
    assert all(a["suspended"] for a in suspended)
    assert get(sim, "/api/v2/admin/accounts", origin="mars").status_code == 422
    bad = get(sim, "/api/v2/admin/accounts", max_id="abc")
    assert bad.status_code == 422 and "max_id" in bad.json()["error"]


def test_tokens_and_permissions(sim):
    assert get(sim, "/api/v2/admin/accounts", headers={}).json() == {"error": "The access token is invalid"}
    wrong = get(sim, "/api/v1/accounts/verify_credentials", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    forbidden = get(sim, "/api/v2/admin/accounts", headers=USER)
    assert (forbidden.status_code, forbidden.json()) == (403, {"error": "This action is not allowed"})
    assert get(sim, "/api/v1/accounts/verify_credentials", headers=USER).json()["username"] == "reporter"
    assert "admin:read" in get(sim, "/api/v1/apps/verify_credentials").json()["scopes"]
    missing = get(sim, "/api/v1/accounts/1")
    assert (missing.status_code, missing.json()) == (404, {"error": "Record not found"})


def test_every_answer_has_ratelimit_headers_and_one_date(sim):
    for response in (get(sim, "/api/v1/instance"), get(sim, "/api/v1/accounts/1"), get(sim, "/nothing/here")):
        assert response.headers["x-ratelimit-limit"] == "300"
        assert int(response.headers["x-ratelimit-remaining"]) >= 0
        assert response.headers["x-ratelimit-reset"].endswith("Z")
        assert len(response.headers.get_list("date")) == 1


def test_rate_limit_window_answers_429():
    with running(accounts=5, ratelimit_limit=3, ratelimit_period=3600) as sim:
        answers = [get(sim, "/api/v1/instance/rules") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[-1].json() == {"error": "Too many requests"}
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
        # Another token has its own window.
        assert get(sim, "/api/v1/instance/rules", headers=USER).status_code == 200


def test_reports_from_form_and_json_and_bad_input(sim):
    target = next(a for a in sim.state.accounts.values() if a.pattern == "keyword_spam")
    status_id = str(sim.state.statuses_of(target.id)[0].id)
    form = httpx.post(sim.base_url + "/api/v1/reports/", headers=USER,
                      data={"account_id": str(target.id), "status_ids[]": [status_id], "comment": "spam",
                            "category": "spam", "forward": "0"})
    assert form.status_code == 200 and form.json()["status_ids"] == [status_id]
    as_json = httpx.post(sim.base_url + "/api/v1/reports", headers=USER,
                         json={"account_id": str(target.id), "category": "violation", "rule_ids": ["1"]})
    assert as_json.json()["rule_ids"] == ["1"] and as_json.json()["category"] == "violation"
    # No account_id is Account.find(nil): 404, as reports_controller.rb answers.
    for body, status in (({"comment": "x"}, 404), ({"account_id": str(target.id), "category": "rude"}, 422),
                         ({"account_id": str(target.id), "comment": "x" * 1001}, 422),
                         ({"account_id": "1"}, 404), ({"account_id": str(target.id), "status_ids": ["2"]}, 404)):
        answer = httpx.post(sim.base_url + "/api/v1/reports", headers=USER, json=body)
        assert answer.status_code == status and answer.json()["error"]
    filed = httpx.get(sim.base_url + "/_sim/reports").json()
    assert [r["target_account"]["id"] for r in filed[-2:]] == [str(target.id)] * 2
    assert filed[-1]["account"]["username"] == "reporter"


def test_daily_report_limit_per_account():
    with running(accounts=10, reports_per_day=2) as sim:
        target = str(next(a.id for a in sim.state.accounts.values() if a.pattern != "staff"))
        codes = [httpx.post(sim.base_url + "/api/v1/reports", headers=USER, json={"account_id": target}).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]


def test_statuses_paginate_with_link(sim):
    author = max(sim.state.accounts.values(), key=lambda a: len(sim.state.statuses_of(a.id)))
    total = len(sim.state.statuses_of(author.id))
    assert total >= 3
    first = get(sim, f"/api/v1/accounts/{author.id}/statuses", limit="2")
    second = get(sim, f"/api/v1/accounts/{author.id}/statuses", limit="2", max_id=links(first)["next"]["max_id"][0])
    ids = [int(s["id"]) for s in first.json() + second.json()]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)


def test_mastodon_py_works_unchanged_against_it(sim):
    api = mastodon.Mastodon(api_base_url=sim.base_url, access_token="sim-admin-token", version_check_mode="created",
                            ratelimit_method="throw")
    assert api.verify_minimum_version("4.0.0", cached=True)
    page = api.admin_accounts_v2(origin="remote", limit=10)
    assert len(page) == 10
    # Mastodon.py's fetch_next() cannot rebuild admin_accounts_v2's list type, so page by hand.
    older = api.admin_accounts_v2(origin="remote", limit=10, max_id=page._pagination_next["max_id"])
    assert older and int(older[0].id) < int(page[-1].id)
    assert api.ratelimit_remaining < 300
    with pytest.raises(mastodon.MastodonNotFoundError):
        api.account(1)


def test_faults_are_injected_and_deterministic(sim):
    httpx.put(sim.base_url + "/_sim/faults", json={"error_ratio": 0.5}).raise_for_status()
    first = [get(sim, "/api/v1/instance/rules").status_code for _ in range(12)]
    httpx.put(sim.base_url + "/_sim/faults", json={"error_ratio": 0.5}).raise_for_status()
    second = [get(sim, "/api/v1/instance/rules").status_code for _ in range(12)]
    assert first == second and set(first) == {200, 503}
    assert httpx.put(sim.base_url + "/_sim/faults", json={"error_ratio": 2}).status_code == 422
    httpx.put(sim.base_url + "/_sim/faults", json={"error_ratio": 0, "ratelimit_ratio": 1}).raise_for_status()
    assert get(sim, "/api/v1/instance").status_code == 429


def test_timeout_fault_outlasts_the_client_timeout(sim):
    httpx.put(sim.base_url + "/_sim/faults", json={"timeout_ratio": 1, "timeout_seconds": 1.0}).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(sim.base_url + "/api/v1/instance", timeout=0.2)


def test_added_accounts_and_statuses_are_listed_first(sim):
    added = httpx.post(sim.base_url + "/_sim/accounts", json={"username": "fresh_spammer", "domain": "spamfarm.example"}).json()
    newest = get(sim, "/api/v2/admin/accounts", origin="remote", limit="1").json()
    assert newest[0]["id"] == added["id"] and newest[0]["account"]["acct"] == "fresh_spammer@spamfarm.example"
    post = httpx.post(sim.base_url + "/_sim/statuses",
                      json={"account_id": added["id"], "text": "buy now", "media_descriptions": [None]}).json()
    assert post["media_attachments"][0]["description"] is None
    assert get(sim, f"/api/v1/accounts/{added['id']}/statuses").json()[0]["id"] == post["id"]
    assert httpx.delete(sim.base_url + f"/_sim/accounts/{added['id']}").status_code == 200
    assert get(sim, f"/api/v1/accounts/{added['id']}").status_code == 404


def test_admin_token_comes_from_the_environment_even_when_it_starts_with_a_dash(monkeypatch):
    # `modwatch run` generates the token with secrets.token_urlsafe, which may begin with "-": as an argument
    # argparse took it for an option and the simulator died at start-up.
    from modwatch.cli import build_parser

    monkeypatch.setenv("SIMULATOR_ADMIN_TOKEN", "-starts-with-a-dash")
    assert build_parser().parse_args(["simulate"]).admin_token == "-starts-with-a-dash"
