"""The one finder of the shared Mastodon recordings (tests/isolation.py): found, skipped with a reason, or failed."""

from __future__ import annotations

import pytest

import isolation


def test_the_recordings_are_found_where_the_environment_says():
    recordings = isolation.mastodon_recordings()
    assert recordings == isolation.SHARED_DIR / "mastodon"
    assert any((recordings / "cassettes").glob("*.yaml")) and (recordings / "webhooks" / "signatures.txt").is_file()


def test_without_them_a_test_is_skipped_saying_where_it_looked_and_what_to_set(monkeypatch, tmp_path):
    monkeypatch.setattr(isolation, "SHARED_DIR", tmp_path)
    monkeypatch.setattr(isolation, "REQUIRE_SHARED", False)
    with pytest.raises(pytest.skip.Exception, match=f"no recorded Mastodon answers at {tmp_path}/mastodon .*MODWATCH_SHARED_DIR"):
        isolation.mastodon_recordings()


def test_a_directory_named_by_the_environment_must_hold_them(monkeypatch, tmp_path):
    (tmp_path / "mastodon").mkdir()  # present but empty: still not the recordings
    monkeypatch.setattr(isolation, "SHARED_DIR", tmp_path)
    monkeypatch.setattr(isolation, "REQUIRE_SHARED", True)
    with pytest.raises(pytest.fail.Exception, match="no recorded Mastodon answers"):
        isolation.mastodon_recordings()
