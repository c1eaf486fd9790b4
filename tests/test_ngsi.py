"""NGSI-LD: every entity the server emits is normalized NGSI-LD and validates against the project's
SortedWasteObserved Smart Data Model and the official common definitions (local copies, no download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from server_fixtures import World, event

from server.ngsi import to_key_values

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "fiware"
MODEL = REPO / "server" / "fiware" / "SortedWasteObserved"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    if not (SHARED / "common-schema.json").is_file():
        pytest.skip("../shared/fiware/common-schema.json is not beside the project")
    common = json.loads((SHARED / "common-schema.json").read_text())
    registry = Registry().with_resource(common["$id"], Resource.from_contents(common))
    schema = json.loads((MODEL / "schema.json").read_text())
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def test_the_model_examples_validate(validator: Draft202012Validator) -> None:
    validator.validate(json.loads((MODEL / "examples" / "example.json").read_text()))
    normalized = json.loads((MODEL / "examples" / "example-normalized.jsonld").read_text())
    validator.validate(to_key_values(normalized))


def test_the_schema_rejects_a_wrong_entity(validator: Draft202012Validator) -> None:
    good = json.loads((MODEL / "examples" / "example.json").read_text())
    for broken in (
        {**good, "type": "WasteObserved"},
        {**good, "itemCountIn": -1},
        {**good, "location": {"type": "Point"}},
        {k: v for k, v in good.items() if k != "itemCountByClassIn"},
    ):
        assert list(validator.iter_errors(broken)), broken


def test_every_entity_is_normalized_ngsi_ld_and_validates(world: World, validator: Draft202012Validator) -> None:
    world.ingest(
        "cam-1", [event("cam-1", cls="glass"), event("cam-1", cls="paper", line="belt-2"), event("cam-1", cls="glass", direction="out")]
    )
    r = world.client.get("/ngsi-ld/v1/entities", params={"type": "SortedWasteObserved"}, headers=world.headers("reader"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/ld+json")
    entities = r.json()
    ids = {e["id"] for e in entities}
    assert {
        "urn:ngsi-ld:SortedWasteObserved:berkane-c1",
        "urn:ngsi-ld:SortedWasteObserved:berkane-c1:belt-1",
        "urn:ngsi-ld:SortedWasteObserved:berkane-c1:belt-2",
        "urn:ngsi-ld:SortedWasteObserved:oujda-c2",
    } == ids
    for e in entities:
        assert e["@context"][0].endswith("/ngsi-ld/context.jsonld")
        for name in ("itemCountIn", "itemCountByClassIn", "classShare"):
            assert e[name]["type"] == "Property" and e[name]["observedAt"].endswith("Z")
        validator.validate(to_key_values(e))
    site = next(e for e in entities if e["id"].endswith(":berkane-c1"))
    assert site["itemCountByClassIn"]["value"] == {"glass": 1, "paper": 1} and site["itemCountOut"]["value"] == 1
    assert site["location"]["type"] == "GeoProperty"
    line = next(e for e in entities if e["id"].endswith(":belt-2"))
    assert line["refSortingSite"] == {"type": "Relationship", "object": "urn:ngsi-ld:SortedWasteObserved:berkane-c1"}


def test_one_entity_by_id_and_key_values_and_not_found(world: World, validator: Draft202012Validator) -> None:
    world.ingest("cam-1", [event("cam-1", cls="metal")])
    base = "/ngsi-ld/v1/entities/urn:ngsi-ld:SortedWasteObserved:berkane-c1"
    kv = world.client.get(base, params={"options": "keyValues"}, headers=world.headers("reader")).json()
    validator.validate(kv)
    assert kv["itemCountByClassIn"] == {"metal": 1}
    missing = world.client.get(base + ":no-such-line", headers=world.headers("reader"))
    assert missing.status_code == 404 and missing.json()["type"].endswith("ResourceNotFound")
    assert world.client.get("/ngsi-ld/v1/entities", headers=world.headers("reader")).status_code == 400
    assert world.client.get("/ngsi-ld/v1/entities", params={"type": "Other"}, headers=world.headers("reader")).json() == []


def test_the_context_is_served_by_the_server(world: World) -> None:
    ctx = world.client.get("/ngsi-ld/context.jsonld").json()
    assert "SortedWasteObserved" in ctx["@context"]


def test_push_upserts_every_entity_into_a_context_broker(world: World, validator: Draft202012Validator) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from server.broker import entities_for, push

    received: list[object] = []

    class Broker(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            assert self.path == "/ngsi-ld/v1/entityOperations/upsert" and self.headers["Content-Type"] == "application/ld+json"
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    broker = HTTPServer(("127.0.0.1", 0), Broker)
    threading.Thread(target=broker.handle_request, daemon=True).start()
    world.ingest("cam-1", [event("cam-1", cls="glass")])
    with world.client.app.state.sessions() as session:  # type: ignore[attr-defined]
        entities = entities_for(session, "http://farz.example.org/ngsi-ld/context.jsonld", "berkane-c1")
    assert push(f"http://127.0.0.1:{broker.server_address[1]}", entities) == 204
    broker.server_close()
    (sent,) = received
    assert isinstance(sent, list) and {e["id"] for e in sent} == {e["id"] for e in entities}
    for e in sent:
        validator.validate(to_key_values(e))
