"""SQLAlchemy models. Every change comes with an Alembic migration (one head)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
