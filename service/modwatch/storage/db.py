"""The database: one engine per process, sessions, and migrations at start."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, cast
from urllib.parse import urlsplit

from sqlalchemy import Engine, Table, create_engine, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from modwatch.settings import get_settings
from modwatch.storage.models import Base

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None


def _connect_args(url: str) -> dict:
    # SQLite is shared by the API thread pool and forked work horses.
    return {"check_same_thread": False, "timeout": 30} if url.startswith("sqlite") else {}


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL opens, also when it is written as a URI (`sqlite:///file:<path>?mode=ro&uri=true`,
    whose `file:` is no folder); None for another database or an in-memory one."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") == "true":
        database = urlsplit(database).path
        if not database or parsed.query.get("mode") == "memory":
            return None
    return Path(database)


def _ensure_sqlite_folder(url: str) -> None:
    if (path := sqlite_file(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def get_engine() -> Engine:
    global _engine, _sessions
    if _engine is None:
        url = get_settings().database_url
        _ensure_sqlite_folder(url)
        _engine = create_engine(url, pool_pre_ping=True, connect_args=_connect_args(url))
        _sessions = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def dispose_engine() -> None:
    """Forget the engine: after a fork (work horse) or when settings change (tests)."""
    global _engine, _sessions
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = None
    _sessions = None


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    get_engine()
    assert _sessions is not None
    session = _sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def insert_new(session: Session, model: type[Base], rows: list[dict], unique: tuple[str, ...]) -> None:
    """Insert the rows whose `unique` columns are not in `model`'s table yet and leave the others as
    they are: one INSERT ... ON CONFLICT DO NOTHING (SQLite and PostgreSQL both have it) for all the
    rows, so a row another process inserted first costs neither a savepoint nor a second pass."""
    table = cast(Table, model.__table__)  # a Core insert: the ORM's bulk path would cost as much again
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(table).on_conflict_do_nothing(index_elements=list(unique)), rows)


def ping_database() -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


def check_database_writable() -> None:
    """Raise unless the database accepts a write: a read-only replica, a read-only file or a full
    disk answer SELECT 1 but lose every decision. The write rewrites the one row every migrated
    database has to itself, and commits: cheap, and nothing changes."""
    with get_engine().begin() as connection:
        if connection.dialect.name == "postgresql":
            # A migration holding the row makes the probe fail fast instead of hanging the probe.
            connection.execute(text("SET LOCAL lock_timeout = '2s'"))
        connection.execute(text("UPDATE alembic_version SET version_num = version_num"))


def alembic_config(url: str | None = None) -> Config:
    # Alembic is imported only where migrations run: every forked work horse copies what the
    # worker imported, and Alembic is 11 MB of it.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%"))
    return config


def upgrade_database(url: str | None = None) -> None:
    from alembic import command

    url = url or get_settings().database_url
    _ensure_sqlite_folder(url)
    command.upgrade(alembic_config(url), "head")
