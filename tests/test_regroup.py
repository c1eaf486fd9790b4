"""Day rollups made again when a site's time-zone rules change: the days that old rules put counts on are
re-summed from the minute rollups by today's rules, once, on the real SQLite file and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from server_fixtures import World, event
from sqlalchemy import select

from server.db import make_engine, session_factory
from server.migrate import migrate
from server.models import RollupDay, Site
from server.zones import RULES_VERSION

LATE = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # 23:30 on the 24th in Casablanca today (UTC+0), 00:30 on the 25th under 2025b


def day_rows(url: str, site: str) -> dict[tuple[date, str], int]:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as s:
            rows = s.execute(select(RollupDay.bucket, RollupDay.cls, RollupDay.count).where(RollupDay.site_id == site))
            return {(b, c): int(n) for b, c, n in rows}
    finally:
        engine.dispose()


def as_if_made_under_old_rules(url: str, site: str) -> None:
    """Rewrite the site's days as a server with Debian's tzdata 2025b (Casablanca UTC+1 outside Ramadan) made them."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as s, s.begin():
            for row in s.scalars(select(RollupDay).where(RollupDay.site_id == site)).all():
                s.delete(row)
            s.flush()
            old = timezone(timedelta(hours=1))
            s.add(
                RollupDay(
                    site_id=site, bucket=LATE.astimezone(old).date(), device_id="cam-1", line="belt-1", cls="glass", direction="in", count=2
                )
            )
            s.add(
                RollupDay(site_id=site, bucket=date(2026, 11, 24), device_id="cam-1", line="belt-1", cls="glass", direction="in", count=1)
            )
            site_row = s.get(Site, site)
            assert site_row is not None
            site_row.tz_rules = "2025b"
    finally:
        engine.dispose()


def test_days_made_under_old_rules_are_summed_again_once(world: World) -> None:
    world.client.app.state.settings.max_past_days = 10_000  # type: ignore[attr-defined]
    early = LATE - timedelta(hours=12)
    world.ingest(
        "cam-1",
        [event("cam-1", early, cls="glass"), event("cam-1", LATE, cls="glass"), event("cam-1", LATE + timedelta(minutes=1), cls="glass")],
    )
    right = {(date(2026, 11, 24), "glass"): 3}
    assert day_rows(world.url, world.site) == right
    assert migrate(world.url) == []  # made under today's rules: nothing to do

    as_if_made_under_old_rules(world.url, world.site)
    assert day_rows(world.url, world.site) == {(date(2026, 11, 24), "glass"): 1, (date(2026, 11, 25), "glass"): 2}
    regrouped = migrate(world.url)
    assert [(r.site, r.rules_before, r.rules_now, r.changed) for r in regrouped] == [(world.site, "2025b", RULES_VERSION, 2)]
    assert day_rows(world.url, world.site) == right
    series = world.client.get(
        "/api/v1/counts",
        params={"site": world.site, "bucket": "day", "from": "2026-11-24T00:00:00+00:00", "to": "2026-11-26T00:00:00+00:00"},
        headers=world.headers("reader"),
    ).json()["series"]
    assert [(p["start"], p["count"]) for p in series] == [("2026-11-24T00:00:00+00:00", 3)]
    assert migrate(world.url) == []  # once
