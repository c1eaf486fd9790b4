"""Sites' time zones: the server keeps site days by the `tzdata` package's rules and gives pages the same offsets."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.zones import UnknownZoneError, site_zone, utc_offsets

ZONES = ("Africa/Casablanca", "Europe/Paris", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")


def test_casablanca_follows_the_2026_rules_whatever_the_system_has() -> None:
    zone = site_zone("Africa/Casablanca")
    assert datetime(2026, 7, 14, 12, tzinfo=UTC).astimezone(zone).utcoffset() == timedelta(hours=1)
    assert datetime(2026, 12, 5, 23, 30, tzinfo=UTC).astimezone(zone).date().isoformat() == "2026-12-05"  # UTC+0 now


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../../etc/passwd", "", "Africa/", "Europe//Paris"])
def test_names_that_are_not_iana_zones_are_refused(name: str) -> None:
    with pytest.raises(UnknownZoneError, match="unknown time zone"):
        site_zone(name)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(ZONES), seconds=st.integers(0, 28 * 365 * 86400))
def test_the_offset_table_gives_the_zones_offset_at_every_instant(name: str, seconds: int) -> None:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    instant = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    table = utc_offsets(name, now)
    assert table[0][0] == datetime(2000, 1, 1, tzinfo=UTC) and table == sorted(table)
    if instant >= datetime(now.year + 3, 1, 1, tzinfo=UTC):
        return
    minutes = table[bisect.bisect_right([at for at, _ in table], instant) - 1][1]
    assert instant.astimezone(site_zone(name)).utcoffset() == timedelta(minutes=minutes)


def test_the_table_holds_each_change_to_the_minute() -> None:
    paris = utc_offsets("Europe/Paris", datetime(2026, 12, 5, tzinfo=UTC))
    assert (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 120) in paris and (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 60) in paris
    assert utc_offsets("UTC") == [(datetime(2000, 1, 1, tzinfo=UTC), 0)]
    assert utc_offsets("Asia/Kolkata") == [(datetime(2000, 1, 1, tzinfo=UTC), 330)]
