"""Tokens: random (256 bits), stored as SHA-256, checked in constant time; roles and what they may do."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Device, Site, Token

ROLES = ("device", "viewer", "installer", "reader", "scientist", "reviewer", "admin")


class AdminError(ValueError):
    """An admin command cannot be carried out (unknown site, duplicate id, …)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: role, and the site or device a token is bound to (None = all sites)."""

    role: str
    site_id: str | None
    device_id: str | None
    token_id: int | None = None
    name: str | None = None

    @property
    def who(self) -> str:
        """How labels name this token's holder: ``Amina (reviewer #7)``."""
        return f"{self.name or 'unnamed'} ({self.role} #{self.token_id})"

    def may_review(self, site_id: str) -> bool:
        """Reviewers (of their one site) and admins label review crops."""
        return self.role in ("reviewer", "admin") and (self.site_id is None or self.site_id == site_id)

    def may_read(self, site_id: str) -> bool:
        return self.role in ("viewer", "installer", "reader", "admin") and (self.site_id is None or self.site_id == site_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "farz_" + secrets.token_urlsafe(32)


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal of ``token``, or None when it is unknown."""
    digest = hash_token(token)
    row = session.execute(select(Token).where(Token.hash == digest)).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.hash, digest):
        return None
    return Principal(row.role, row.site_id, row.device_id, row.id, row.name)


def create_site(
    session: Session,
    site_id: str,
    name: str,
    tz: str,
    latitude: float | None = None,
    longitude: float | None = None,
    address: str | None = None,
) -> Site:
    from server.zones import RULES_VERSION, UnknownZoneError, site_zone

    try:
        site_zone(tz)
    except UnknownZoneError:
        raise AdminError(f"unknown time zone {tz!r}: use an IANA name such as Africa/Casablanca") from None
    if session.get(Site, site_id) is not None:
        raise AdminError(f"site {site_id!r} exists already")
    site = Site(
        id=site_id,
        name=name,
        tz=tz,
        tz_rules=RULES_VERSION,
        latitude=latitude,
        longitude=longitude,
        address=address,
        created=datetime.now(UTC),
    )
    session.add(site)
    return site


def create_token(session: Session, role: str, site_id: str | None = None, device_id: str | None = None, name: str | None = None) -> str:
    """Store a new token's hash and return the token itself (shown once, never stored). ``name``: who holds it."""
    if role not in ROLES:
        raise AdminError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if role == "reviewer" and site_id is None:
        raise AdminError("a reviewer token belongs to one site: pass --site")
    if name is not None and not 0 < len(name) <= 100:
        raise AdminError("a token's name is 1 to 100 characters")
    if site_id is not None and session.get(Site, site_id) is None:
        raise AdminError(f"unknown site {site_id!r}: create it first with `farz server admin create-site`")
    token = new_token()
    session.add(Token(hash=hash_token(token), role=role, site_id=site_id, device_id=device_id, name=name, created=datetime.now(UTC)))
    return token


def create_device(session: Session, device_id: str, site_id: str) -> str:
    """Register a device on a site; returns its device token."""
    if session.get(Site, site_id) is None:
        raise AdminError(f"unknown site {site_id!r}: create it first with `farz server admin create-site`")
    if session.get(Device, device_id) is not None:
        raise AdminError(f"device {device_id!r} exists already")
    session.add(Device(id=device_id, site_id=site_id, created=datetime.now(UTC)))
    session.flush()
    return create_token(session, "device", site_id=site_id, device_id=device_id)
