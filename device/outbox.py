"""The outbox: every CountEvent is committed to SQLite (WAL, synchronous=FULL) before anything else.

The uploader reads batches in order and deletes only the event ids the server acknowledged. The
outbox also keeps small state (a file replay's position and running totals) in the same database, so
that events and the position they were counted at are committed in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    event_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""


class OutboxFull(RuntimeError):
    """The outbox reached its disk budget; the agent must stop counting until uploads free space."""


@dataclass(frozen=True)
class PendingEvent:
    """An event waiting for upload: its order in the outbox, its id and its JSON body."""

    seq: int
    event_id: str
    body: dict[str, object]


class Outbox:
    """A thread-safe SQLite outbox with a byte budget (``max_bytes``) on the database file."""

    def __init__(self, path: Path, max_bytes: int = 256 * 2**20) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def size_bytes(self) -> int:
        """Bytes used by the database pages (what the budget limits)."""
        with self._lock:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
            page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * page_size)

    def is_full(self) -> bool:
        return self.size_bytes() >= self.max_bytes

    def commit(self, events: Iterable[dict[str, object]], state: dict[str, object] | None = None) -> int:
        """Durably store ``events`` (each with an ``event_id``) and ``state`` in one transaction.

        Raises OutboxFull (storing nothing) when the budget is reached. Returns how many were stored.
        """
        rows = [(str(e["event_id"]), json.dumps(e, separators=(",", ":"))) for e in events]
        if rows and self.is_full():
            raise OutboxFull(f"outbox {self.path} is full ({self.size_bytes() / 2**20:.1f} MB of {self.max_bytes / 2**20:.1f} MB)")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO events (event_id, body) VALUES (?, ?)", rows)
                for key, value in (state or {}).items():
                    self._db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, json.dumps(value)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def pending(self, limit: int) -> list[PendingEvent]:
        """The oldest ``limit`` events not yet acknowledged."""
        with self._lock:
            rows = self._db.execute("SELECT seq, event_id, body FROM events ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [PendingEvent(int(s), str(i), json.loads(b)) for s, i, b in rows]

    def acknowledge(self, event_ids: Iterable[str]) -> int:
        """Delete events the server confirmed (accepted or duplicate); returns how many were deleted."""
        ids = [(i,) for i in event_ids]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.executemany("DELETE FROM events WHERE event_id = ?", ids)
            self._db.execute("COMMIT")
        return int(cur.rowcount)

    def reject(self, event_ids: list[str], reason: str) -> int:
        """Move events the server refused as invalid to the ``rejected`` table (kept for a person)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for event_id in event_ids:
                self._db.execute(
                    "INSERT OR REPLACE INTO rejected (event_id, body, reason) SELECT event_id, body, ? FROM events WHERE event_id = ?",
                    (reason, event_id),
                )
                self._db.execute("DELETE FROM events WHERE event_id = ?", (event_id,))
            self._db.execute("COMMIT")
        return len(event_ids)

    def rejected_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0])

    def depth(self) -> int:
        """Events waiting for upload."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def get_state(self, key: str, default: object = None) -> object:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])
