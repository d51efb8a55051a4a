"""Migration 0002 on PostgreSQL (in a schema of its own) and SQLite: one head, up and down."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from isolation import postgres_schema
from modwatch.storage.db import alembic_config, upgrade_database
from tests.moderation.conftest import SCHEMA

TABLES = {"poll_cursors", "account_analyses", "reports", "audit_log", "domain_violations"}


@pytest.fixture
def postgres_url():
    with postgres_schema(SCHEMA) as url:
        yield url()


def head() -> list[str]:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()


def test_one_head():
    assert len(head()) == 1


def test_upgrade_and_downgrade_on_postgresql(postgres_url):
    engine = create_engine(postgres_url)
    # Compared before and after, not asserted empty: the test database is shared, and what another user
    # keeps in its public schema is not this migration's doing.
    public_before = set(inspect(engine).get_table_names(schema="public"))
    upgrade_database(postgres_url)
    try:
        inspector = inspect(engine)
        assert TABLES <= set(inspector.get_table_names(schema=SCHEMA))
        assert "alembic_version" in inspector.get_table_names(schema=SCHEMA)
        assert set(inspector.get_table_names(schema="public")) == public_before
        unique = inspector.get_unique_constraints("reports", schema=SCHEMA)
        assert [c["column_names"] for c in unique] == [["dedupe_key", "dry_run"]]
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head()[0]

        command.downgrade(alembic_config(postgres_url), "0001")
        assert not TABLES & set(inspect(engine).get_table_names(schema=SCHEMA))
        upgrade_database(postgres_url)  # and up again
        assert TABLES <= set(inspect(engine).get_table_names(schema=SCHEMA))
    finally:
        engine.dispose()


def test_upgrade_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade_database(url)
    engine = create_engine(url)
    assert TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()
