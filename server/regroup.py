"""Day rollups made again when a site's time-zone rules change (a new `tzdata`, or this server's first start
with them): each site's days are re-summed from its UTC minute rollups by today's rules, nothing recounted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.aggregates import as_utc
from server.ingest import bump
from server.models import RollupDay, RollupMinute, Site
from server.zones import RULES_VERSION, site_zone

DayKey = tuple[date, str, str, str, str]  # local day, device, line, class, direction


@dataclass(frozen=True)
class Regrouped:
    """A site whose days were made again: the rules before (None: not recorded) and now, and the day totals
    (per device, line, class and direction) that changed."""

    site: str
    rules_before: str | None
    rules_now: str
    changed: int


def day_totals(session: Session, site: Site) -> Counter[DayKey]:
    """The site's counts per local day by today's rules, summed from its minute rollups."""
    tz = site_zone(site.tz)
    days: Counter[DayKey] = Counter()
    rows = session.execute(
        select(RollupMinute.bucket, RollupMinute.device_id, RollupMinute.line, RollupMinute.cls, RollupMinute.direction, RollupMinute.count)
        .where(RollupMinute.site_id == site.id)
        .execution_options(yield_per=10_000)
    )
    for bucket, device, line, cls, direction, n in rows:
        days[(as_utc(bucket).astimezone(tz).date(), device, line, cls, direction)] += int(n)
    return days


def regroup_site(session: Session, site: Site) -> Regrouped:
    """Rewrite the site's day rollups by today's rules and record them; returns what changed."""
    days = day_totals(session, site)
    stored = {
        (b, d, ln, c, dr): int(n)
        for b, d, ln, c, dr, n in session.execute(
            select(RollupDay.bucket, RollupDay.device_id, RollupDay.line, RollupDay.cls, RollupDay.direction, RollupDay.count).where(
                RollupDay.site_id == site.id
            )
        )
    }
    changed = sum(1 for key in set(stored) | set(days) if stored.get(key, 0) != days.get(key, 0))
    if changed:
        session.execute(delete(RollupDay).where(RollupDay.site_id == site.id))
        bump(session, RollupDay.__table__, site.id, days)  # type: ignore[arg-type]
    before = site.tz_rules
    site.tz_rules = RULES_VERSION
    return Regrouped(site.id, before, RULES_VERSION, changed)


def regroup_stale_sites(session: Session) -> list[Regrouped]:
    """Every site whose days were made under other rules than today's, made again (committed by the caller)."""
    stale = session.scalars(select(Site).where((Site.tz_rules.is_(None)) | (Site.tz_rules != RULES_VERSION)).order_by(Site.id))
    return [regroup_site(session, site) for site in stale]
