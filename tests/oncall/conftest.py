"""Fixtures for the on-call kit tests."""

from __future__ import annotations

import pytest
import yaml

from oncall.support import RULES_FILE


@pytest.fixture(scope="session")
def rule_groups() -> list[dict]:
    return yaml.safe_load(RULES_FILE.read_text())["groups"]


@pytest.fixture(scope="session")
def alert_rules(rule_groups) -> list[dict]:
    return [rule for group in rule_groups for rule in group["rules"] if "alert" in rule]
