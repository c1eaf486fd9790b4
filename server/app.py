"""``create_app(settings)``: the FastAPI application, with nothing built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import ngsi, registry, reviews, routes_alerts, routes_api, routes_labels, routes_live, routes_reports
from server.db import WalGuard, make_engine, session_factory
from server.settings import Settings
from server.webhooks import Sender

STATIC = Path(__file__).resolve().parent / "static"


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_model_bytes: int) -> None:
        self.app = app
        self.default_max = max_bytes
        self.max_model_bytes = max_model_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_model_bytes if scope.get("path") == "/api/v1/models" else self.default_max
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await JSONResponse({"detail": f"body larger than {limit} bytes"}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await JSONResponse({"detail": f"body larger than {limit} bytes"}, status_code=413)(scope, receive, send)


class BodyTooLarge(Exception):
    pass


def create_app(settings: Settings) -> FastAPI:
    """The app for ``settings``; the database must be migrated (``farz server migrate``). While it is served,
    a thread sends the sites' alert webhooks."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings
        sender = Sender(app.state.sessions, s.webhook_poll_s, s.webhook_timeout_s, s.webhook_backoff_s, s.webhook_max_attempts)
        sender.start()
        try:
            yield
        finally:
            sender.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="farz server",
        version="0.1.0",
        summary="Waste items counted at sorting points: ingest from devices, aggregates for staff and the city.",
        description="Authenticate with `Authorization: Bearer <token>` (tokens from `farz server admin`). "
        "Roles: device (ingest only, for itself), viewer (dashboard), reader (city API), admin.",
    )
    engine = make_engine(settings.database_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.wal_guard = WalGuard(engine)
    app.include_router(routes_api.router, tags=["api"])
    app.include_router(routes_alerts.router, tags=["targets and alerts"])
    app.include_router(routes_labels.router, tags=["time labels"])
    app.include_router(routes_reports.router, tags=["shifts and reports"])
    app.include_router(routes_live.router, tags=["live"])
    app.include_router(ngsi.router, tags=["ngsi-ld"])
    app.include_router(registry.router, tags=["models and samples"])
    app.include_router(reviews.router, tags=["reviews"])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_model_bytes=settings.max_model_bytes)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    @app.get("/review", include_in_schema=False)
    def review_page() -> FileResponse:
        return FileResponse(STATIC / "review.html", media_type="text/html")

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.middleware("http")
    async def no_store(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
