"""Push NGSI-LD entities to a FIWARE context broker (Orion-LD, Scorpio, Stellio) with a batch upsert."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Site
from server.ngsi import CORE_CONTEXT, key_values, lines_of, normalized


class BrokerError(RuntimeError):
    """The broker refused the upsert or could not be reached; the message carries its answer."""


def entities_for(session: Session, context_url: str, site_id: str | None = None) -> list[dict[str, object]]:
    """Every site and line entity (today's counts), normalized, with ``@context`` = [ours, core]."""
    now = datetime.now(UTC)
    sites = session.execute(select(Site).order_by(Site.id)).scalars()
    out = []
    for site in sites:
        if site_id and site.id != site_id:
            continue
        out.append(normalized(key_values(session, site, None, now), [context_url, CORE_CONTEXT]))
        out += [normalized(key_values(session, site, line, now), [context_url, CORE_CONTEXT]) for line in lines_of(session, site.id)]
    return out


def push(broker_url: str, entities: list[dict[str, object]], timeout_s: float = 30.0, tenant: str | None = None) -> int:
    """``POST /ngsi-ld/v1/entityOperations/upsert`` (replace); returns the HTTP status."""
    headers = {"Content-Type": "application/ld+json"}
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    request = urllib.request.Request(
        f"{broker_url.rstrip('/')}/ngsi-ld/v1/entityOperations/upsert", data=json.dumps(entities).encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise BrokerError(f"{broker_url}: HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise BrokerError(f"{broker_url}: cannot reach the broker ({exc.reason})") from exc
