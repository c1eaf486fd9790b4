"""NGSI-LD for FIWARE: ``SortedWasteObserved`` entities per site and per line (see server/fiware/README.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import aggregates
from server.deps import PrincipalDep, SessionDep
from server.models import RollupDay, Site
from server.zones import site_zone

ENTITY_TYPE = "SortedWasteObserved"
FIWARE = Path(__file__).resolve().parent / "fiware"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
TAXONOMY_VERSION = 1
router = APIRouter(prefix="/ngsi-ld")


def entity_id(site_id: str, line: str | None = None) -> str:
    return f"urn:ngsi-ld:{ENTITY_TYPE}:{site_id}" + (f":{line}" if line else "")


def key_values(session: Session, site: Site, line: str | None, now: datetime) -> dict[str, object]:
    """One entity in key-value form: today's counts (site-local day) of a site or one of its lines."""
    tz = site_zone(site.tz)
    today = now.astimezone(tz).date()
    stmt = select(RollupDay.direction, RollupDay.cls, func.sum(RollupDay.count)).where(
        RollupDay.site_id == site.id, RollupDay.bucket == today
    )
    if line:
        stmt = stmt.where(RollupDay.line == line)
    counts: dict[str, dict[str, int]] = {"in": {}, "out": {}}
    for direction, cls, n in session.execute(stmt.group_by(RollupDay.direction, RollupDay.cls)):
        counts[direction][cls] = int(n)
    total_in = sum(counts["in"].values())
    entity: dict[str, object] = {
        "id": entity_id(site.id, line),
        "type": ENTITY_TYPE,
        "name": f"{site.name} · {line}" if line else site.name,
        "sortingSite": site.id,
        "dateObservedFrom": aggregates.local_midnight(today, tz).isoformat(),
        "dateObservedTo": now.astimezone(tz).isoformat(),
        "itemCountIn": total_in,
        "itemCountOut": sum(counts["out"].values()),
        "itemCountByClassIn": dict(sorted(counts["in"].items())),
        "itemCountByClassOut": dict(sorted(counts["out"].items())),
        "classShare": aggregates.shares(counts["in"]),
        "taxonomyVersion": TAXONOMY_VERSION,
    }
    if line:
        entity["sortingLine"] = line
        entity["refSortingSite"] = entity_id(site.id)
    if site.latitude is not None and site.longitude is not None:
        entity["location"] = {"type": "Point", "coordinates": [site.longitude, site.latitude]}
    if site.address:
        entity["address"] = {"streetAddress": site.address}
    return entity


COUNT_PROPERTIES = ("itemCountIn", "itemCountOut", "itemCountByClassIn", "itemCountByClassOut", "classShare")
DATE_PROPERTIES = ("dateObservedFrom", "dateObservedTo")


def normalized(entity: dict[str, object], context: list[str]) -> dict[str, object]:
    """Key-value entity → normalized NGSI-LD (Property / GeoProperty / Relationship, observedAt on counts)."""
    observed = datetime.fromisoformat(str(entity["dateObservedTo"])).astimezone(UTC).isoformat().replace("+00:00", "Z")
    out: dict[str, object] = {"id": entity["id"], "type": entity["type"]}
    for key, value in entity.items():
        if key in ("id", "type"):
            continue
        if key == "location":
            out[key] = {"type": "GeoProperty", "value": value}
        elif key.startswith("ref"):
            out[key] = {"type": "Relationship", "object": value}
        elif key in DATE_PROPERTIES:
            out[key] = {"type": "Property", "value": {"@type": "DateTime", "@value": value}}
        elif key in COUNT_PROPERTIES:
            out[key] = {"type": "Property", "value": value, "observedAt": observed}
        else:
            out[key] = {"type": "Property", "value": value}
    out["@context"] = context
    return out


def to_key_values(entity: dict[str, object]) -> dict[str, object]:
    """Normalized NGSI-LD → key-value form (what the Smart Data Model schema describes)."""
    out: dict[str, object] = {}
    for key, attr in entity.items():
        if key == "@context":
            continue
        if not isinstance(attr, dict):
            out[key] = attr
        elif attr.get("type") == "Relationship":
            out[key] = attr["object"]
        else:
            value = attr["value"]
            out[key] = value["@value"] if isinstance(value, dict) and "@value" in value else value
    return out


def lines_of(session: Session, site_id: str) -> list[str]:
    """Every count line a site has counted on, sorted."""
    return [r[0] for r in session.execute(select(RollupDay.line).where(RollupDay.site_id == site_id).distinct().order_by(RollupDay.line))]


def _error(status: int, kind: str, title: str) -> JSONResponse:
    return JSONResponse(
        {"type": f"https://uri.etsi.org/ngsi-ld/errors/{kind}", "title": title}, status_code=status, media_type="application/json"
    )


def _context(request: Request) -> list[str]:
    return [str(request.url_for("ngsi_context")), CORE_CONTEXT]


def _readable_sites(session: Session, principal: PrincipalDep) -> list[Site]:
    return [s for s in session.execute(select(Site).order_by(Site.id)).scalars() if principal.may_read(s.id)]


@router.get("/context.jsonld", name="ngsi_context", summary="JSON-LD @context of SortedWasteObserved")
def context() -> JSONResponse:
    return JSONResponse(json.loads((FIWARE / "context.jsonld").read_text()), media_type="application/ld+json")


@router.get("/v1/entities", summary="NGSI-LD entities: one SortedWasteObserved per site and per line (today's counts)")
def entities(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    type: Annotated[str | None, Query()] = None,
    options: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    if principal.role == "device":
        return _error(403, "NoMultiTenantSupport", "device tokens can only send events")
    if type is None:
        return _error(400, "BadRequestData", "pass `type` (SortedWasteObserved)")
    if type not in (ENTITY_TYPE, f"https://farz.example.org/dataModel.WasteManagement/{ENTITY_TYPE}"):
        return JSONResponse([], media_type="application/ld+json")
    now = datetime.now(UTC)
    found = []
    for site in _readable_sites(session, principal):
        found.append(key_values(session, site, None, now))
        found += [key_values(session, site, line, now) for line in lines_of(session, site.id)]
    page = found[offset : offset + limit]
    if options == "keyValues":
        return JSONResponse(page, media_type="application/ld+json")
    ctx = _context(request)
    return JSONResponse([normalized(e, ctx) for e in page], media_type="application/ld+json")


@router.get("/v1/entities/{entity}", summary="One NGSI-LD entity by id")
def entity(entity: str, request: Request, principal: PrincipalDep, session: SessionDep, options: str | None = None) -> JSONResponse:
    prefix = f"urn:ngsi-ld:{ENTITY_TYPE}:"
    if principal.role == "device":
        return _error(403, "NoMultiTenantSupport", "device tokens can only send events")
    if not entity.startswith(prefix):
        return _error(404, "ResourceNotFound", f"no entity {entity}")
    site_id, _, line = entity[len(prefix) :].partition(":")
    site = session.get(Site, site_id)
    if site is None or not principal.may_read(site_id) or (line and line not in lines_of(session, site_id)):
        return _error(404, "ResourceNotFound", f"no entity {entity}")
    kv = key_values(session, site, line or None, datetime.now(UTC))
    body = kv if options == "keyValues" else normalized(kv, _context(request))
    return JSONResponse(body, media_type="application/ld+json")
