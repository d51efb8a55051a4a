import subprocess
import sys

import pytest

from modwatch.settings import ConfigError, Settings, env_names, load_settings

CONTRACT_NAMES = {
    "REDIS_URL", "DATABASE_URL", "INSTANCE_BASE", "MASTODON_ACCESS_TOKEN", "WEBHOOK_SECRET", "API_KEY", "DRY_RUN",
    "PANIC_STOP", "POLL_ADMIN_ACCOUNTS_INTERVAL", "POLL_ADMIN_ACCOUNTS_LOCAL_INTERVAL", "QUEUE_STATS_INTERVAL",
}


def test_contract_names_are_read():
    assert CONTRACT_NAMES <= env_names()


def test_defaults(monkeypatch):
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.dry_run is True
    assert settings.panic_stop is False
    assert (settings.poll_admin_accounts_interval, settings.poll_admin_accounts_local_interval,
            settings.queue_stats_interval) == (30, 30, 15)
    assert settings.database_url.startswith("sqlite:///./var/")


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("POLL_ADMIN_ACCOUNTS_INTERVAL", "0", "POLL_ADMIN_ACCOUNTS_INTERVAL"),
        ("QUEUE_STATS_INTERVAL", "soon", "QUEUE_STATS_INTERVAL"),
        ("DRY_RUN", "perhaps", "DRY_RUN"),
        ("INSTANCE_BASE", "mastodon.example", "INSTANCE_BASE: Value error, must start with http"),
    ],
)
def test_invalid_value_names_the_variable(monkeypatch, name, value, fragment):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_invalid_value_fails_at_start_with_one_line(monkeypatch):
    monkeypatch.setenv("QUEUE_STATS_INTERVAL", "-3")
    result = subprocess.run([sys.executable, "-m", "modwatch.cli", "api"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and "QUEUE_STATS_INTERVAL" in lines[0]


def test_secret_values_never_in_config_errors(monkeypatch):
    monkeypatch.setenv("API_KEY", "super-secret-value")
    monkeypatch.setenv("POLL_MAX_PAGES", "1000")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "super-secret-value" not in str(caught.value)


def test_check_config_offline(core_env):
    result = subprocess.run([sys.executable, "-m", "modwatch.cli", "check-config", "--offline"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "API_KEY is set" in result.stdout
    assert core_env["API_KEY"] not in result.stdout


def test_check_config_connects(core_env):
    result = subprocess.run([sys.executable, "-m", "modwatch.cli", "check-config"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   redis" in result.stdout and "ok   database" in result.stdout
