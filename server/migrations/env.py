"""Alembic environment: runs migrations on the URL given by ``server.migrate``."""

from __future__ import annotations

from alembic import context

from server.db import make_engine
from server.models import Base

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
