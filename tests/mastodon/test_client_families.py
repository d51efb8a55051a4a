"""The client names the rate-limit family of each answer, and files every report category through Mastodon.py."""

from datetime import datetime, timezone

import mastodon
import pytest

from modwatch.mastodon import families
from modwatch.mastodon.client import _API_REQUEST, _TRY_CAST, MastodonClient
from modwatch.mastodon.errors import NotSentError, RateLimitedError
from modwatch.simulator.server import running

ADMIN_TOKEN = "sim-admin-token"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


GRID = 1_800_000_000 - 1_800_000_000 % 86_400  # a UTC midnight: on every family's grid


def test_a_request_counts_against_the_families_rack_attack_and_the_report_model_name():
    """config/initializers/rack_attack.rb (`paging_request?`), app/controllers/api/v1/reports_controller.rb."""
    assert families.counted_by("GET", "/api/v2/admin/accounts", {"max_id": "5"}) == ("global", "user", "paging")
    assert families.counted_by("GET", "/api/v2/admin/accounts", {"max_id": ""}) == ("global", "user")
    assert families.counted_by("POST", "/api/v1/reports", {}) == ("global", "user", "reports")
    assert families.counted_by("GET", "/api/v1/instance", {}, authenticated=False) == ("unauthenticated",)


@pytest.mark.parametrize("counted, limit, reset, now, expected", [
    (("global", "user", "paging"), 300, GRID + 900 + 300, GRID + 900 + 10.5, ("global",)),  # 5-min grid only
    (("global", "user", "paging"), 300, GRID + 900, GRID + 400.2, ("paging",)),  # more than 5 minutes ahead
    (("global", "user", "paging"), 300, GRID + 900, GRID + 700.2, ("global", "paging")),  # both fit: both
    (("global", "user", "reports"), 400, GRID + 86_400, GRID + 50_000.1, ("reports",)),
    (("global", "user", "reports"), 300, GRID + 600, GRID + 400.1, ("global",)),
    (("global", "user"), 1_500, GRID + 600, GRID + 400.1, ("user",)),
])
def test_headers_are_attributed_by_the_grid_their_reset_lies_on(counted, limit, reset, now, expected):
    """app/controllers/concerns/rate_limit_headers.rb: `request_time + (period - request_time.to_i % period)`."""
    fraction = now % 1
    assert families.attribute(counted, limit, at(reset + fraction), at(now)) == expected


def test_each_answer_names_its_family_against_the_simulator():
    with running(accounts=5, paging_limit=10, reports_per_day=2) as sim:
        client = MastodonClient(sim.base_url, ADMIN_TOKEN)
        target = next(str(a.id) for a in sim.state.accounts.values() if a.pattern != "staff")
        client.admin_accounts("remote", max_id="99999999999999999999")
        client.account(target)
        client.file_report(target, [], "first", category="spam")
        answers = client.take_answers()
        assert [a.remaining for a in answers] == [9, 298, 1]
        # The paging answer's reset is on the 15-minute grid; in the last 5 minutes of that window it is on the
        # 5-minute grid too, and with a limit that is not Mastodon's only the grid can tell.
        assert "paging" in answers[0].families and "reports" not in answers[0].families
        assert [a.families for a in answers[1:]] == [("global",), ("reports",)]
        assert client.take_answers() == []
        client.file_report(target, [], "second", category="spam")
        with pytest.raises(RateLimitedError) as refused:
            client.file_report(target, [], "third", category="spam")
        assert refused.value.families == ("reports",)
        assert refused.value.reset_at.hour == 0 and refused.value.reset_at > datetime.now(timezone.utc)


def test_legal_reports_are_filed_and_a_refused_call_is_never_read_from_the_previous_answer():
    """app/models/report.rb: `legal` is a category since Mastodon 4.2."""
    with running(accounts=5) as sim:
        client = MastodonClient(sim.base_url, ADMIN_TOKEN)
        target = next(a for a in sim.state.accounts.values() if a.pattern != "staff" and sim.state.statuses_of(a.id))
        status_id = str(sim.state.statuses_of(target.id)[0].id)
        filed = client.file_report(str(target.id), [status_id], "modwatch:legal", category="legal", forward=True)
        assert filed["category"] == "legal" and filed["status_ids"] == [status_id]
        assert sim.state.reports[-1].category == "legal" and sim.state.reports[-1].comment == "modwatch:legal"
        client.take_answers()
        with pytest.raises(NotSentError):
            client.file_report(str(target.id), [], "x", category="rude")
        assert client.take_answers() == []


def test_mastodon_py_still_refuses_legal_so_the_client_sends_it_through_its_request_function():
    """When this fails, Mastodon.py accepts `legal` (or renamed its request function): use report() for it."""
    api = mastodon.Mastodon(api_base_url="http://127.0.0.1:9", access_token="x", version_check_mode="none")
    with pytest.raises(mastodon.MastodonIllegalArgumentError):
        api.report("1", category="legal")
    assert callable(getattr(api, _API_REQUEST))


def test_the_client_skips_mastodon_pys_casting_which_it_does_not_read():
    """When this fails, Mastodon.py renamed its casting step: the client's calls would cast again (slow, not wrong)."""
    assert callable(getattr(mastodon.Mastodon, _TRY_CAST))
    with running(accounts=40) as sim:
        client = MastodonClient(sim.base_url, ADMIN_TOKEN)
        page = client.admin_accounts("remote", limit=20)
        assert page.items and isinstance(page.items[0]["account"]["id"], str)
        assert _TRY_CAST not in vars(client._api)  # only for the call
        assert client.check_version() == sim.state.config.version
