"""``/api/v1/live``: server-sent events with a site's live totals, its targets and alerts, for the staff dashboard.

Each stream polls the site's newest event row id (an indexed lookup) every ``live_poll_s`` and sends
today's totals when it changed, so it works the same with several server workers and after restarts; the
targets (judged now) and the last alerts follow each change of the counts, and any alert opened or closed
between counts (a device gone offline) at the next tick.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from server import aggregates, targets
from server.deps import PrincipalDep, SessionDep, SettingsDep, readable_site
from server.ingest import latest_event_id
from server.models import Site

T = TypeVar("T")

router = APIRouter(prefix="/api/v1")
HEALTH_EVERY_S = 5.0


@router.get(
    "/live",
    summary="Server-sent events: `totals` when counts change, `alerts` when an alert opens or closes, `health` every few seconds",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def live(
    request: Request, principal: PrincipalDep, session: SessionDep, settings: SettingsDep, site: Annotated[str | None, Query()] = None
) -> StreamingResponse:
    row = readable_site(session, principal, site)
    site_id = row.id
    session.close()
    sessions = request.app.state.sessions

    def read(query: Callable[[Session], T]) -> T:
        with sessions() as s:
            return query(s)

    def totals(s: Session) -> tuple[int, str]:
        """Today's and this week's totals, with the event marker they include."""
        site_row = s.get(Site, site_id)
        assert site_row is not None
        today, week = aggregates.today_and_week(site_row)
        data = {"today": aggregates.period(s, site_row, today).model_dump(), "this_week": aggregates.period(s, site_row, week).model_dump()}
        return latest_event_id(s, site_id), f"event: totals\ndata: {json.dumps(data)}\n\n"

    def health(s: Session) -> str:
        site_row = s.get(Site, site_id)
        assert site_row is not None
        devices = [d.model_dump(mode="json") for d in aggregates.device_health(s, site_row, settings.offline_after_s)]
        targets.evaluate_devices(s, site_id, settings.offline_after_s, settings.outbox_alert_depth)
        s.commit()
        return f"event: health\ndata: {json.dumps({'devices': devices})}\n\n"

    def alerts(s: Session) -> tuple[tuple[int, int], str]:
        """The targets judged now and the last alerts, with the alerts marker they include."""
        data = {"targets": targets.target_states(s, site_id), "alerts": targets.alert_rows(s, site_id, limit=20)}
        return targets.alerts_marker(s, site_id), f"event: alerts\ndata: {json.dumps(data)}\n\n"

    async def stream() -> AsyncIterator[str]:
        last = -1
        last_alerts = (-1, -1)
        since_health = HEALTH_EVERY_S
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            counted = await asyncio.to_thread(read, lambda s: latest_event_id(s, site_id)) != last
            if counted:
                last, message = await asyncio.to_thread(read, totals)
                yield message
            ticked = since_health >= HEALTH_EVERY_S
            if ticked:
                yield await asyncio.to_thread(read, health)
                since_health = 0.0
            if counted or (ticked and await asyncio.to_thread(read, lambda s: targets.alerts_marker(s, site_id)) != last_alerts):
                last_alerts, message = await asyncio.to_thread(read, alerts)
                yield message
            await asyncio.sleep(settings.live_poll_s)
            since_health += settings.live_poll_s

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
