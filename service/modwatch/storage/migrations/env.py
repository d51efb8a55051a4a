"""Alembic environment: the URL comes from modwatch's settings (or the caller's config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from modwatch.storage.models import Base

config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:  # modwatch.storage.db always sets it; a bare `alembic` command line may not
        raise RuntimeError("the Alembic config has no sqlalchemy.url; run `modwatch migrate`")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=url.startswith("sqlite")
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
