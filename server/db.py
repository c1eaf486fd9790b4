"""Engine and sessions: SQLite (WAL, foreign keys) by default, PostgreSQL by URL."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, ``synchronous=NORMAL`` and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class WalGuard:
    """Keeps an SQLite write-ahead log from growing without bound under continuous writes.

    With writers always active, SQLite's automatic checkpoints can never reset the log (checkpoint
    starvation); every ``every`` commits one writer runs ``wal_checkpoint(TRUNCATE)``, which waits
    briefly for readers and empties the log. No-op on other databases.
    """

    def __init__(self, engine: Engine, every: int = 200) -> None:
        self.enabled = engine.dialect.name == "sqlite"
        self.every = every
        self._commits = 0
        self._lock = threading.Lock()

    def after_commit(self, session: Session) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._commits += 1
            due = self._commits % self.every == 0
        if due:
            session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def upsert_insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT that supports ON CONFLICT (PostgreSQL's or SQLite's) for ``table``."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
