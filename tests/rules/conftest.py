"""Helpers for the rules engine tests: rule files written on the fly, real Mastodon payloads."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from isolation import mastodon_recordings
from modwatch.moderation.engine import RuleSet, load_rules



@pytest.fixture
def write_rules(tmp_path):
    """Write a rules file (YAML text) and return its path."""

    def write(text: str, name: str = "rules.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def ruleset(write_rules):
    """A RuleSet from one or more rule mappings (YAML fragments of the `rules:` list)."""

    def build(*rules: dict) -> RuleSet:
        document = {"version": 1, "rules": [{"weight": 1, "category": "spam", **rule} for rule in rules]}
        return load_rules(write_rules(yaml.safe_dump(document)))

    return build


@pytest.fixture
def cassette_bodies():
    """(request URI, decoded JSON body) of each interaction recorded in a cassette."""

    def bodies(name: str) -> list[tuple[str, object]]:
        recording = yaml.safe_load((mastodon_recordings() / "cassettes" / name).read_text())
        return [
            (interaction["request"]["uri"], json.loads(interaction["response"]["body"]["string"]))
            for interaction in recording["interactions"]
        ]

    return bodies


@pytest.fixture
def docs_example():
    """An entity example from the Mastodon documentation."""
    return lambda name: json.loads((mastodon_recordings() / "docs-examples" / name).read_text())
