"""``farz server run | migrate | admin …``: the aggregation server and its administration."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

SubParsers = Any


def _database_url(args: argparse.Namespace) -> str:
    from server.settings import DEFAULT_DATABASE_URL

    return str(args.database_url or os.environ.get("FARZ_DATABASE_URL") or DEFAULT_DATABASE_URL)


def _db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: env FARZ_DATABASE_URL, else sqlite:///farz.db)")


def register(sub: SubParsers) -> None:
    """Add ``server`` and ``bench server`` style subcommands."""
    srv = sub.add_parser("server", help="the server: ingest, dashboard, aggregate API, NGSI-LD")
    s = srv.add_subparsers(dest="server", metavar="STEP", required=True)
    run = s.add_parser("run", help="serve HTTP (uvicorn); migrates the database first")
    _db_arg(run)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    run.add_argument("--config", type=Path, default=None, help="settings YAML (FARZ_* environment variables override it)")
    run.set_defaults(handler=run_server)
    mig = s.add_parser("migrate", help="create or upgrade the database schema (Alembic)")
    _db_arg(mig)
    mig.set_defaults(handler=run_migrate)
    adm = s.add_parser("admin", help="sites, devices and tokens; a command that makes a token prints it alone on stdout")
    a = adm.add_subparsers(dest="admin", metavar="ACTION", required=True)
    site = a.add_parser("create-site", help="register a sorting site")
    site.add_argument("site_id")
    site.add_argument("--name", required=True)
    site.add_argument("--tz", required=True, help="IANA time zone, e.g. Africa/Casablanca")
    site.add_argument("--lat", type=float, default=None)
    site.add_argument("--lon", type=float, default=None)
    site.add_argument("--address", default=None)
    _db_arg(site)
    site.set_defaults(handler=run_create_site)
    dev = a.add_parser("create-device", help="register a device on a site; prints its device token")
    dev.add_argument("device_id")
    dev.add_argument("--site", required=True)
    _db_arg(dev)
    dev.set_defaults(handler=run_create_device)
    am = a.add_parser("assign-model", help="assign a registered model (id or sha256 prefix) to a site or a device")
    am.add_argument("--model", required=True)
    grp = am.add_mutually_exclusive_group(required=True)
    grp.add_argument("--site")
    grp.add_argument("--device")
    _db_arg(am)
    am.set_defaults(handler=run_assign_model)
    rb = a.add_parser(
        "rollback-model", help="assign the detector (or, with --classifier, the material classifier) a site or device had before"
    )
    grp = rb.add_mutually_exclusive_group(required=True)
    grp.add_argument("--site")
    grp.add_argument("--device")
    rb.add_argument("--classifier", action="store_true", help="roll back the material classifier; the detector stays as it is")
    _db_arg(rb)
    rb.set_defaults(handler=run_rollback_model)
    st = a.add_parser(
        "set-target",
        help="purity targets on a line: a class's minimum and/or maximum share of its items over a rolling window",
        description="Example: --site berkane-c1 --line pet --min plastic=0.9 --max trash=0.05 --window-min 15 --min-items 20. "
        "A target given again replaces the old one. The dashboard shows each line red while one of its targets is breached.",
    )
    st.add_argument("--site", required=True)
    st.add_argument("--line", required=True)
    st.add_argument("--min", action="append", default=[], metavar="CLASS=SHARE", help="CLASS makes at least SHARE (0-1) of the items")
    st.add_argument("--max", action="append", default=[], metavar="CLASS=SHARE", help="CLASS makes at most SHARE (0-1) of the items")
    st.add_argument("--window-min", type=int, default=15, help="rolling window in minutes (default 15)")
    st.add_argument("--min-items", type=int, default=20, help="items the window must hold before it is judged (default 20)")
    _db_arg(st)
    st.set_defaults(handler=run_set_target)
    push = s.add_parser("push-ngsi", help="upsert today's NGSI-LD entities into a FIWARE context broker (run it from cron or a timer)")
    push.add_argument("--broker", required=True, metavar="URL", help="context broker base URL, e.g. http://orion-ld:1026")
    push.add_argument("--context-url", required=True, help="public URL of this server's /ngsi-ld/context.jsonld")
    push.add_argument("--site", default=None, help="only this site")
    push.add_argument("--tenant", default=None, help="NGSILD-Tenant header")
    push.add_argument("--every", type=float, default=0.0, help="repeat every N seconds (0 = once)")
    _db_arg(push)
    push.set_defaults(handler=run_push_ngsi)
    tok = a.add_parser(
        "create-token", help="make a viewer, installer (sets up device cameras), reader, scientist or admin token; prints it"
    )
    tok.add_argument("--role", required=True, choices=["viewer", "installer", "reader", "scientist", "admin"])
    tok.add_argument("--site", default=None, help="limit the token to one site")
    _db_arg(tok)
    tok.set_defaults(handler=run_create_token)


def register_bench(bench_sub: SubParsers) -> None:
    b = bench_sub.add_parser("server", help="ingest events/s through real HTTP and aggregate query latency")
    b.add_argument("--events", type=int, default=100_000)
    _db_arg(b)
    b.add_argument("--devices", type=int, default=8)
    b.add_argument("--queries", type=int, default=200)
    b.add_argument("--workers", type=int, default=1, help="server worker processes")
    b.add_argument(
        "--target-events", type=int, default=20_000, help="events for the side-by-side ingest into sites with and without purity targets"
    )
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=run_bench_server)


def run_migrate(args: argparse.Namespace) -> int:
    from server.migrate import migrate

    migrate(_database_url(args))
    print(f"database at {_redact(_database_url(args))} is up to date")
    return 0


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _admin(args: argparse.Namespace, action: Any) -> int:
    from server.db import make_engine, session_factory
    from server.migrate import migrate

    url = _database_url(args)
    migrate(url)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            out = action(session)
            session.commit()
    finally:
        engine.dispose()
    if out:
        print(out)
    return 0


def run_create_site(args: argparse.Namespace) -> int:
    from server.auth import create_site

    def action(session: Any) -> str:
        create_site(session, args.site_id, args.name, args.tz, args.lat, args.lon, args.address)
        print(f"site {args.site_id} created", file=sys.stderr)
        return ""

    return _admin(args, action)


def run_create_device(args: argparse.Namespace) -> int:
    from server.auth import create_device

    return _admin(args, lambda session: create_device(session, args.device_id, args.site))


def run_create_token(args: argparse.Namespace) -> int:
    from server.auth import create_token

    return _admin(args, lambda session: create_token(session, args.role, site_id=args.site))


def _class_share(value: str, flag: str) -> tuple[str, float]:
    from server.auth import AdminError

    cls, _, share = value.partition("=")
    try:
        return cls.strip(), float(share)
    except ValueError:
        raise AdminError(f"{flag} {value!r}: expected CLASS=SHARE with SHARE in 0-1, e.g. plastic=0.9") from None


def run_set_target(args: argparse.Namespace) -> int:
    from server.auth import AdminError
    from server.targets import describe, set_target

    wanted = [("min", *_class_share(v, "--min")) for v in args.min] + [("max", *_class_share(v, "--max")) for v in args.max]
    if not wanted:
        raise AdminError("give at least one --min CLASS=SHARE or --max CLASS=SHARE")

    def action(session: Any) -> str:
        rows = [set_target(session, args.site, args.line, cls, kind, share, args.window_min, args.min_items) for kind, cls, share in wanted]
        return "\n".join(f"target {row.id} on {args.site}/{args.line}: {describe(row)}, judged from {row.min_items} items" for row in rows)

    return _admin(args, action)


def _registry_call(action: Any) -> Any:
    from fastapi import HTTPException

    from server.auth import AdminError

    try:
        return action()
    except HTTPException as exc:
        raise AdminError(str(exc.detail)) from None


def run_assign_model(args: argparse.Namespace) -> int:
    from server import registry

    def action(session: Any) -> str:
        model = _registry_call(lambda: registry.find_model(session, args.model))
        _registry_call(lambda: registry.assign(session, model, args.site, args.device))
        print(f"{args.site or args.device} now runs {model.name} ({model.sha256[:12]})", file=sys.stderr)
        return ""

    return _admin(args, action)


def run_rollback_model(args: argparse.Namespace) -> int:
    from server import registry

    def action(session: Any) -> str:
        task = "classify" if args.classifier else "detect"
        model = _registry_call(lambda: registry.rollback(session, args.site, args.device, task))
        print(f"{args.site or args.device} rolled back to {model.name} ({model.sha256[:12]})", file=sys.stderr)
        return ""

    return _admin(args, action)


def run_push_ngsi(args: argparse.Namespace) -> int:
    import time

    from server.broker import entities_for, push
    from server.db import make_engine, session_factory

    engine = make_engine(_database_url(args))
    try:
        while True:
            with session_factory(engine)() as session:
                entities = entities_for(session, args.context_url, args.site)
            status = push(args.broker, entities, tenant=args.tenant)
            print(f"pushed {len(entities)} entities to {args.broker} (HTTP {status})", file=sys.stderr)
            if args.every <= 0:
                return 0
            time.sleep(args.every)
    finally:
        engine.dispose()


def run_server(args: argparse.Namespace) -> int:
    import uvicorn

    from server.migrate import migrate
    from server.settings import Settings

    url = _database_url(args)
    os.environ["FARZ_DATABASE_URL"] = url
    settings = Settings.load(args.config)
    migrate(settings.database_url)
    if args.config is not None:
        os.environ["FARZ_SERVER_CONFIG"] = str(args.config)
    uvicorn.run("server.asgi:app", host=args.host, port=args.port, workers=args.workers, log_level="info", access_log=False)
    return 0


def run_bench_server(args: argparse.Namespace) -> int:
    from bench.server import bench_server

    result = bench_server(
        _database_url(args) if args.database_url else None, args.events, args.devices, args.queries, args.workers, args.target_events
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<32}{value}")
    return 0
