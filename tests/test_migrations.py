"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from server_fixtures import fresh_postgres_url, postgres_available

from server.db import make_engine
from server.migrate import migrate
from server.models import Base


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_migrations_match_the_models(backend: str, tmp_path: Path) -> None:
    if backend == "postgresql" and not postgres_available():
        pytest.skip("no PostgreSQL (.ci/run starts one)")
    url = fresh_postgres_url() if backend == "postgresql" else f"sqlite:///{tmp_path / 'farz.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
