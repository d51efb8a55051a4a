"""The file behind a SQLite URL, whose folder modwatch creates before opening it (storage/db.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modwatch.storage import db


@pytest.mark.parametrize(("url", "file"), [
    ("sqlite:////srv/modwatch/modwatch.db", Path("/srv/modwatch/modwatch.db")),
    ("sqlite:///data/modwatch.db", Path("data/modwatch.db")),
    # A URI filename (read-only opening, as tests/core/test_hardening.py does): `file:` is a scheme, not a folder.
    ("sqlite:///file:/srv/modwatch/modwatch.db?mode=ro&uri=true", Path("/srv/modwatch/modwatch.db")),
    ("sqlite:///file:data/modwatch.db?uri=true", Path("data/modwatch.db")),
    ("sqlite:///file:shared?mode=memory&uri=true", None),
    ("sqlite:///:memory:", None),
    ("sqlite://", None),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/modwatch", None),
])
def test_the_file_of_a_sqlite_url(url, file):
    assert db.sqlite_file(url) == file


def test_opening_a_read_only_uri_creates_no_file_colon_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db._ensure_sqlite_folder(f"sqlite:///file:{tmp_path}/data/modwatch.db?mode=ro&uri=true")
    assert [path.name for path in tmp_path.iterdir()] == ["data"]
