"""A fuzzer driven by the OpenAPI schema (schemathesis) against every endpoint: no 5xx, ever."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from server_fixtures import build_world

_WORLD = build_world(f"sqlite:///{Path(tempfile.mkdtemp(prefix='farz-fuzz-')) / 'farz.db'}")
schema = schemathesis.openapi.from_asgi("/openapi.json", _WORLD.client.app)


@schema.exclude(path="/api/v1/live").parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    role = "cam-1" if case.path.endswith("/ingest") else "reader"
    response = case.call(headers={"Authorization": f"Bearer {_WORLD.tokens[role]}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"


@pytest.mark.parametrize("query", [{}, {"site": "nowhere"}, {"site": ""}, {"site": "berkane-c1", "token": "farz_wrong"}])
def test_the_live_stream_refuses_bad_requests_with_4xx(query: dict[str, str]) -> None:
    headers = {} if "token" in query else {"Authorization": f"Bearer {_WORLD.tokens['cam-1']}"}
    response = _WORLD.client.get("/api/v1/live", params=query, headers=headers)
    assert 400 <= response.status_code < 500
