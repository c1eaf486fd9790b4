"""Alembic migrations, run from code (``farz server migrate``) with the scripts in ``server/migrations``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from server.db import make_engine, session_factory
from server.regroup import Regrouped, regroup_stale_sites

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str, revision: str = "head") -> list[Regrouped]:
    """Bring the database at ``database_url`` to ``revision`` (default: the newest); at the newest, make the day
    rollups of every site whose time-zone rules changed again (returned, for the caller to report)."""
    command.upgrade(alembic_config(database_url), revision)
    if revision != "head":
        return []
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session, session.begin():
            return regroup_stale_sites(session)
    finally:
        engine.dispose()
