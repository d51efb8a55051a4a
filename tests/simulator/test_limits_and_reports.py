"""The simulator's rate-limit families and report validation, each following the Mastodon source file it cites."""

from datetime import datetime, timezone

import httpx

from modwatch.simulator.server import running
from sim_support import ADMIN, USER, body, find


def get(sim, path, headers=ADMIN, **params):
    return httpx.get(sim.base_url + path, headers=headers, params=params, timeout=10)


def report(sim, headers=USER, **fields):
    return httpx.post(sim.base_url + "/api/v1/reports", headers=headers, json=fields, timeout=10)


def reset_of(response) -> datetime:
    return datetime.fromisoformat(response.headers["x-ratelimit-reset"].replace("Z", "+00:00"))


def headers(response) -> tuple[str, str]:
    return response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]


def a_poster(sim):
    return next(a for a in sim.state.accounts.values() if a.pattern != "staff" and sim.state.statuses_of(a.id)
                and a.moderation == "active")


def test_paging_requests_have_their_own_per_user_family_and_its_429_blocks_only_paging():
    """config/initializers/rack_attack.rb: throttle_authenticated_paging counts requests with min_id/max_id/
    since_id/page, 300 per 15 minutes per user; throttle_per_token_api counts every request."""
    with running(accounts=5, paging_limit=3) as sim:
        pages = [get(sim, "/api/v2/admin/accounts", max_id="99999999999999999999") for _ in range(4)]
        assert [p.status_code for p in pages] == [200, 200, 200, 429]
        # The 429 names the throttle that refused: its limit, Remaining 0, its 15-minute window.
        assert headers(pages[-1]) == ("3", "0") and int(reset_of(pages[-1]).timestamp()) % 900 == 0
        # Not paging: the per-token family, which counted all four (it comes before paging in the file) and this one.
        plain = get(sim, "/api/v2/admin/accounts")
        assert plain.status_code == 200 and headers(plain) == ("300", str(300 - 5))
        # An empty paging parameter is not paging (`params['max_id'].present?`).
        assert get(sim, "/api/v2/admin/accounts", max_id="").status_code == 200


def test_headers_describe_the_family_nearest_to_running_out():
    """app/controllers/concerns/rate_limit_headers.rb: `min_by { limit - count }` over the throttles that
    counted the request."""
    with running(accounts=5, paging_limit=10) as sim:
        first = get(sim, "/api/v2/admin/accounts", since_id="1")
        assert headers(first) == ("10", "9")  # paging has 9 left, per token 299: paging is nearer
        assert int(reset_of(first).timestamp()) % 900 == 0
        plain = get(sim, "/api/v1/instance")
        assert headers(plain) == ("300", "298") and int(reset_of(plain).timestamp()) % 300 == 0


def test_reset_is_the_request_time_plus_what_is_left_of_the_window_in_microseconds():
    """rate_limit_headers.rb `(request_time + reset_period_offset).iso8601(6)`; windows on the epoch grid
    (Rack::Attack::Cache `now / period`)."""
    with running(accounts=3) as sim:
        before = datetime.now(timezone.utc)
        answer = get(sim, "/api/v1/instance")
        raw = answer.headers["x-ratelimit-reset"]
        assert len(raw.split(".")[1]) == len("123456Z")
        reset = reset_of(answer)
        assert int(reset.timestamp()) % 300 == 0 and 0 < (reset - before).total_seconds() <= 301


def test_reports_have_a_daily_family_per_account_whose_429_leaves_other_requests_alone():
    """app/lib/rate_limiter.rb (reports: 400 per 24 hours) counted by app/models/report.rb; the controller's
    `override_rate_limit_headers :create, family: :reports` shows it when it is nearer than the API limit."""
    with running(accounts=10, reports_per_day=3) as sim:
        target = str(a_poster(sim).id)
        answers = [report(sim, account_id=target) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [headers(a) for a in answers] == [("3", "2"), ("3", "1"), ("3", "0"), ("3", "0")]
        midnight = reset_of(answers[-1])
        assert int(midnight.timestamp()) % 86_400 == 0 and (midnight.hour, midnight.minute) == (0, 0)
        assert answers[-1].json() == {"error": "Too many requests"}
        # Only reports are refused: the same token reads and pages on.
        assert get(sim, "/api/v1/instance", headers=USER).status_code == 200
        assert get(sim, f"/api/v1/accounts/{target}/statuses", headers=USER, max_id="99999999999999999999").status_code == 200
        assert len(sim.state.reports) == 3


def test_a_report_answer_keeps_the_api_headers_when_they_show_fewer_left():
    """rate_limit_headers.rb: the family's headers are merged `unless` the answer's Remaining is lower."""
    with running(accounts=5, ratelimit_limit=6) as sim:
        target = str(a_poster(sim).id)
        for _ in range(3):
            get(sim, "/api/v1/instance", headers=USER)
        answer = report(sim, account_id=target)  # per token: 2 left; reports: 399 left
        assert answer.status_code == 200 and headers(answer) == ("6", "2")


def test_requests_without_a_valid_token_count_per_address():
    """rack_attack.rb throttle_unauthenticated_api: per address when no token authenticates."""
    with running(accounts=3) as sim:
        anonymous = get(sim, "/api/v1/instance", headers={})
        bad = get(sim, "/api/v1/instance", headers={"Authorization": "Bearer nonsense"})
        assert headers(anonymous) == ("300", "299") and headers(bad) == ("300", "298")
        assert headers(get(sim, "/api/v1/instance")) == ("300", "299")  # the admin token's own window


def test_an_injected_429_answers_like_rack_attacks_responder(sim):
    """rack_attack.rb throttled_responder: X-RateLimit-Remaining is always 0 on a 429."""
    httpx.put(sim.base_url + "/_sim/faults", json={"ratelimit_ratio": 1}).raise_for_status()
    answer = get(sim, "/api/v1/instance")
    assert answer.status_code == 429 and answer.headers["x-ratelimit-remaining"] == "0"


def test_a_report_naming_a_status_the_reporter_cannot_see_answers_404(sim):
    """app/services/report_service.rb: `AccountStatusesFilter...with_discarded.find(status_ids)` raises
    RecordNotFound when any status is deleted or not visible to the reporter."""
    author = a_poster(sim)
    kept = str(sim.state.statuses_of(author.id)[0].id)
    hidden = httpx.post(sim.base_url + "/_sim/statuses", json={"account_id": str(author.id), "text": "psst",
                                                               "visibility": "private"}).json()
    deleted = httpx.post(sim.base_url + "/_sim/statuses", json={"account_id": str(author.id), "text": "gone soon"}).json()
    assert httpx.delete(sim.base_url + f"/_sim/statuses/{deleted['id']}").status_code == 200
    before = len(sim.state.reports)
    for status_ids in ([kept, hidden["id"]], [kept, deleted["id"]]):
        assert report(sim, account_id=str(author.id), status_ids=status_ids).status_code == 404
    assert len(sim.state.reports) == before
    assert report(sim, account_id=str(author.id), status_ids=[kept]).status_code == 200
    # The same visibility for reads: statuses/:id and the account's posts (StatusPolicy, AccountStatusesFilter).
    assert get(sim, f"/api/v1/statuses/{hidden['id']}").status_code == 404
    assert hidden["id"] not in [s["id"] for s in get(sim, f"/api/v1/accounts/{author.id}/statuses").json()]


def test_a_suspended_account_cannot_be_reported_and_shows_no_posts(sim):
    """report_service.rb `raise ActiveRecord::RecordNotFound if @target_account.suspended?`;
    app/controllers/api/v1/accounts/statuses_controller.rb: an unavailable account lists `[]`."""
    author = a_poster(sim)
    moderated = httpx.put(sim.base_url + f"/_sim/accounts/{author.id}/moderation", json={"moderation": "suspended"})
    assert moderated.json()["suspended"] is True
    assert report(sim, account_id=str(author.id)).status_code == 404
    assert get(sim, f"/api/v1/accounts/{author.id}/statuses").json() == []
    assert get(sim, f"/api/v1/accounts/{author.id}").json()["suspended"] is True


def test_categories_and_rule_ids_are_validated_as_the_report_model_does(sim):
    """app/models/report.rb: categories other/spam/legal/violation; rule ids make a violation
    (report_service.rb); a violation needs rule ids that all exist, discarded ones included
    (`Rule.with_discarded`, `rules.size == rule_ids&.size`)."""
    target = str(a_poster(sim).id)
    legal = report(sim, account_id=target, category="legal")
    assert legal.status_code == 200 and legal.json()["category"] == "legal"
    forced = report(sim, account_id=target, category="spam", rule_ids=["2"])
    assert forced.json()["category"] == "violation" and forced.json()["rule_ids"] == ["2"]
    assert report(sim, account_id=target, category="violation").status_code == 422
    assert report(sim, account_id=target, category="violation", rule_ids=["1", "99"]).status_code == 422
    assert report(sim, account_id=target, category="nonsense").status_code == 422
    rules = [{"id": 1, "text": "No spam."}, {"id": 7, "text": "Old rule", "discarded": True}]
    httpx.put(sim.base_url + "/_sim/rules", json={"rules": rules}).raise_for_status()
    assert [r["id"] for r in get(sim, "/api/v1/instance/rules").json()] == ["1"]
    assert report(sim, account_id=target, rule_ids=["7"]).status_code == 200
    assert report(sim, account_id=target, rule_ids=["2"]).status_code == 422


def test_reports_can_be_read_one_by_one_and_resolved(sim):
    """app/controllers/api/v1/admin/reports_controller.rb: show, and `resolved` filters the listing."""
    target = str(a_poster(sim).id)
    filed = report(sim, account_id=target, comment="modwatch:abc").json()
    assert get(sim, f"/api/v1/admin/reports/{filed['id']}").json()["action_taken"] is False
    httpx.post(sim.base_url + f"/_sim/reports/{filed['id']}/resolve").raise_for_status()
    assert get(sim, f"/api/v1/admin/reports/{filed['id']}").json()["action_taken"] is True
    resolved = get(sim, "/api/v1/admin/reports", resolved="true", target_account_id=target).json()
    assert filed["id"] in [r["id"] for r in resolved]
    assert get(sim, "/api/v1/admin/reports/999999").status_code == 404


def test_posts_with_a_link_carry_a_preview_card(sim):
    """app/serializers/rest/preview_card_serializer.rb keys, as 4.x renders them."""
    author = a_poster(sim)
    post = httpx.post(sim.base_url + "/_sim/statuses", json={"account_id": str(author.id),
                                                             "text": "see https://cheap-deals.example/x now"}).json()
    assert post["card"]["url"] == "https://cheap-deals.example/x" and post["card"]["type"] == "link"
    assert {"title", "description", "provider_name", "image", "blurhash", "authors", "published_at"} <= set(post["card"])
    plain = httpx.post(sim.base_url + "/_sim/statuses", json={"account_id": str(author.id), "text": "no link"}).json()
    assert plain["card"] is None


def nested_keys(value, prefix=""):
    keys = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            keys.add(prefix + key)
            if key != "rules":
                keys |= nested_keys(inner, prefix + key + ".")
    return keys


def test_instance_v2_has_every_key_of_a_recorded_4x_server(sim):
    """app/serializers/rest/instance_serializer.rb, as recorded from Mastodon 4.6 (shared/mastodon)."""
    recorded = body(find("test_instance.yaml", "GET", "/api/v2/instance"))
    assert recorded["version"].startswith("4.")
    missing = nested_keys(recorded) - nested_keys(get(sim, "/api/v2/instance").json())
    assert not missing, sorted(missing)
