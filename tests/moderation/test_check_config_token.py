"""`modwatch check-config` against the simulator: the token's identity, role and scopes, and the rules
file's instance rule ids (issue 16, item 4)."""

from __future__ import annotations

import pytest

from isolation import redis_db_url
from modwatch.checks import check_config, covered
from modwatch.settings import get_settings
from modwatch.simulator.server import running
from modwatch.simulator.state import DEFAULT_ADMIN_TOKEN, DEFAULT_USER_TOKEN

STALE_RULES = """\
version: 1
rules:
  - name: threats
    detector: keyword
    keywords: [threat]
    weight: 5
    category: violation
    instance_rule_ids: ["2", "9"]
"""


@pytest.fixture(scope="module")
def sim():
    with running(accounts=3) as simulator:
        yield simulator


def run_check(modwatch_env, capsys, sim, token: str, **settings: str) -> tuple[int, str]:
    modwatch_env(redis_db_url(12), INSTANCE_BASE=sim.base_url, MASTODON_ACCESS_TOKEN=token, **settings)
    code = check_config(get_settings())
    return code, capsys.readouterr().out


def test_an_admin_token_passes_and_says_who_it_is(modwatch_env, capsys, sim):
    code, out = run_check(modwatch_env, capsys, sim, DEFAULT_ADMIN_TOKEN)
    assert code == 0, out
    assert "ok   token: @admin" in out and "role Owner" in out and "admin:read" in out
    assert "ok   instance rules:" in out


def test_a_token_of_an_account_without_a_moderator_role_fails(modwatch_env, capsys, sim):
    code, out = run_check(modwatch_env, capsys, sim, DEFAULT_USER_TOKEN)
    assert code == 1
    assert "FAIL token:" in out and "@reporter" in out and "manage_reports" in out
    assert "admin:read:accounts" in out  # and its scopes lack the admin ones


def test_an_invalid_token_fails(modwatch_env, capsys, sim):
    code, out = run_check(modwatch_env, capsys, sim, "garbage")
    assert code == 1 and "FAIL token: UnauthorizedError" in out


def test_a_rule_naming_an_instance_rule_that_does_not_exist_is_named(modwatch_env, capsys, sim, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(STALE_RULES)
    code, out = run_check(modwatch_env, capsys, sim, DEFAULT_ADMIN_TOKEN, RULES_FILE=str(rules))
    assert code == 1
    assert "FAIL instance rules:" in out and "rule 'threats' names instance rule id 9" in out and "1, 2, 3" in out


def test_parent_scopes_cover_their_children():
    assert covered("admin:read:accounts", {"admin:read"}) and covered("write:reports", {"write"})
    assert not covered("admin:read:reports", {"read", "write"})


def test_a_worker_starting_names_a_stale_instance_rule_id_in_its_log(modwatch_env, sim, tmp_path):
    from structlog.testing import capture_logs

    from modwatch.cli import check_mastodon_version

    rules = tmp_path / "rules.yaml"
    rules.write_text(STALE_RULES)
    modwatch_env(redis_db_url(12), INSTANCE_BASE=sim.base_url, MASTODON_ACCESS_TOKEN=DEFAULT_ADMIN_TOKEN,
                 RULES_FILE=str(rules))
    with capture_logs() as logs:
        check_mastodon_version(get_settings())  # what `modwatch worker` runs before its first job
    stale = [entry for entry in logs if entry["event"] == "instance_rule_ids_stale"]
    assert len(stale) == 1 and stale[0]["log_level"] == "error", logs
    assert "rule 'threats' names instance rule id 9" in stale[0]["error"]
