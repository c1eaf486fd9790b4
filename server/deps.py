"""FastAPI dependencies: a database session per request and the calling principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from server.auth import AdminError, Principal, authenticate
from server.models import Site
from server.settings import Settings

T = TypeVar("T")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_principal(request: Request, session: SessionDep, token: Annotated[str | None, Query(include_in_schema=False)] = None) -> Principal:
    """The token from ``Authorization: Bearer`` (or ``?token=`` for browsers' EventSource)."""
    header = request.headers.get("authorization", "")
    value = header[7:].strip() if header.lower().startswith("bearer ") else token
    if not value:
        raise HTTPException(401, "missing token: send `Authorization: Bearer <token>`", headers={"WWW-Authenticate": "Bearer"})
    principal = authenticate(session, value)
    if principal is None:
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def site_for(session: Session, principal: Principal, site_id: str | None, may: Callable[[str], bool], what: str = "read") -> Site:
    """The site asked for (or the token's only site) when ``may(site_id)``; 422, 403 or 404 otherwise."""
    site_id = site_id or principal.site_id
    if site_id is None:
        raise HTTPException(422, f"pass `site`: this token may {what} several sites")
    if not may(site_id):
        raise HTTPException(403, f"this token may not {what} site {site_id!r}")
    site = session.get(Site, site_id)
    if site is None:
        raise HTTPException(404, f"unknown site {site_id!r}")
    return site


def readable_site(session: Session, principal: Principal, site_id: str | None) -> Site:
    """The site a reader/viewer/admin asked for (or their token's only site); 403/404 otherwise."""
    if principal.role == "device":
        raise HTTPException(403, "device tokens can only send events")
    return site_for(session, principal, site_id, principal.may_read)


def require_admin(principal: Principal, site_id: str, what: str) -> None:
    """403 unless ``principal`` is an admin who may read ``site_id``."""
    if principal.role != "admin" or not principal.may_read(site_id):
        raise HTTPException(403, f"only an admin of this site may {what}")


RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def admin_write(session: Session, principal: Principal, site_id: str, what: str, write: Callable[[Session], T]) -> T:
    """An admin's create-or-replace on ``site_id``: ``write(session)`` (an ``AdminError`` from it is a 422),
    committed; returns what ``write`` returned."""
    require_admin(principal, site_id, what)
    readable_site(session, principal, site_id)
    try:
        out = write(session)
    except AdminError as exc:
        raise HTTPException(422, str(exc)) from None
    session.commit()
    return out


def admin_delete(
    session: Session, principal: Principal, site_id: str | None, what: str, remove: Callable[[Session, str], None]
) -> Response:
    """An admin's DELETE: ``remove(session, site)`` (an ``AdminError`` from it is a 404), committed; 204."""
    row = readable_site(session, principal, site_id)
    require_admin(principal, row.id, what)
    try:
        remove(session, row.id)
    except AdminError as exc:
        raise HTTPException(404, str(exc)) from None
    session.commit()
    return Response(status_code=204)
