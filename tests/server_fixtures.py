"""Server test fixtures: a migrated database (SQLite file, and PostgreSQL when one is reachable), an app,
and helpers to make sites, devices, tokens and events."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from server.app import create_app
from server.auth import create_device, create_site, create_token
from server.db import make_engine, session_factory
from server.migrate import migrate
from server.settings import Settings

POSTGRES_URL = os.environ.get("FARZ_TEST_POSTGRES_URL", "postgresql://farz:farz@127.0.0.1/farz_test")


def postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def fresh_postgres_url() -> str:
    """A new empty schema on the test server, so tests never see each other's rows."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@dataclass
class World:
    """A running app on a migrated database, with one site, two devices and tokens of every role."""

    client: TestClient
    url: str
    site: str
    tokens: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def ingest(
        self, device: str, events: list[dict[str, object]], role: str | None = None, heartbeat: dict[str, object] | None = None
    ) -> object:
        body: dict[str, object] = {"device_id": device, "events": events}
        if heartbeat is not None:
            body["heartbeat"] = heartbeat
        return self.client.post("/api/v1/ingest", json=body, headers=self.headers(role or device))


def event(device: str, ts: datetime | None = None, cls: str = "plastic", direction: str = "in", line: str = "belt-1") -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "ts": (ts or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "device_id": device,
        "line": line,
        "class": cls,
        "direction": direction,
        "track_id": 1,
        "confidence": 0.9,
        "model": "m@sha256:0",
    }


def build_world(url: str, settings: dict[str, object] | None = None) -> World:
    migrate(url)
    engine = make_engine(url)
    tokens: dict[str, str] = {}
    with session_factory(engine)() as s:
        create_site(s, "berkane-c1", "Berkane C1", "Africa/Casablanca", latitude=34.92, longitude=-2.32)
        create_site(s, "oujda-c2", "Oujda C2", "Africa/Casablanca")
        s.flush()
        tokens["cam-1"] = create_device(s, "cam-1", "berkane-c1")
        tokens["cam-2"] = create_device(s, "cam-2", "berkane-c1")
        tokens["cam-9"] = create_device(s, "cam-9", "oujda-c2")
        tokens["viewer"] = create_token(s, "viewer", site_id="berkane-c1")
        tokens["reader"] = create_token(s, "reader")
        tokens["reader-oujda"] = create_token(s, "reader", site_id="oujda-c2")
        tokens["admin"] = create_token(s, "admin")
        tokens["scientist"] = create_token(s, "scientist")
        tokens["reviewer"] = create_token(s, "reviewer", site_id="berkane-c1", name="Amina")
        tokens["reviewer-2"] = create_token(s, "reviewer", site_id="berkane-c1", name="Youssef")
        tokens["reviewer-oujda"] = create_token(s, "reviewer", site_id="oujda-c2", name="Salma")
        s.commit()
    engine.dispose()
    app = create_app(Settings.model_validate({"database_url": url, **(settings or {})}))
    return World(TestClient(app), url, "berkane-c1", tokens)


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "postgresql":
        if not postgres_available():
            if os.environ.get("FARZ_REQUIRE_POSTGRES"):
                pytest.fail(f"no PostgreSQL at {POSTGRES_URL}, and FARZ_REQUIRE_POSTGRES is set")
            pytest.skip(f"no PostgreSQL at {POSTGRES_URL} (.ci/run starts one)")
        url = fresh_postgres_url()
    else:
        url = f"sqlite:///{tmp_path / 'farz.db'}"
    w = build_world(url)
    with w.client:
        yield w
