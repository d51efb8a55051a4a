"""Helpers for the simulator tests: tokens and recorded Mastodon payloads from shared/mastodon/."""

import json

import yaml

from isolation import mastodon_recordings



def cassette(name: str) -> list[dict]:
    return yaml.safe_load((mastodon_recordings() / "cassettes" / name).read_text())["interactions"]


def body(interaction: dict):
    return json.loads(interaction["response"]["body"]["string"])


def find(name: str, method: str, path_part: str) -> dict:
    for interaction in cassette(name):
        request = interaction["request"]
        if request["method"] == method and path_part in request["uri"]:
            return interaction
    raise LookupError(f"{method} {path_part} not in {name}")


ADMIN = {"Authorization": "Bearer sim-admin-token"}
USER = {"Authorization": "Bearer sim-user-token"}
