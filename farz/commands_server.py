"""``farz server run | migrate | admin …``: the aggregation server and its administration."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from farz.parsing import SubParsers, add_command


def _database_url(args: argparse.Namespace) -> str:
    from server.settings import DEFAULT_DATABASE_URL

    return str(args.database_url or os.environ.get("FARZ_DATABASE_URL") or DEFAULT_DATABASE_URL)


def _db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: env FARZ_DATABASE_URL, else sqlite:///farz.db)")


def register(sub: SubParsers) -> None:
    """Add ``server`` and ``bench server`` style subcommands."""
    srv = add_command(sub, "server", help="the server: ingest, dashboard, aggregate API, NGSI-LD")
    s = srv.add_subparsers(dest="server", metavar="STEP", required=True)
    run = add_command(s, "run", help="serve HTTP (uvicorn); migrates the database first")
    _db_arg(run)
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface; default: %(default)s)")
    run.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    run.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    run.add_argument("--config", type=Path, default=None, help="settings YAML (FARZ_* environment variables override it)")
    run.add_argument(
        "--shutdown-timeout",
        type=float,
        default=5.0,
        help="seconds a stop (SIGTERM, Ctrl-C) waits for open requests and live dashboards before closing them",
    )
    run.set_defaults(handler=run_server)
    mig = add_command(s, "migrate", help="create or upgrade the database schema (Alembic)")
    _db_arg(mig)
    mig.set_defaults(handler=run_migrate)
    adm = add_command(s, "admin", help="sites, devices and tokens; a command that makes a token prints it alone on stdout")
    a = adm.add_subparsers(dest="admin", metavar="ACTION", required=True)
    site = add_command(a, "create-site", help="register a sorting site")
    site.add_argument("site_id", help="the site's id in every URL and count, e.g. casa-nord")
    site.add_argument("--name", required=True, help="the site's name as people call it")
    site.add_argument("--tz", required=True, help="IANA time zone, e.g. Africa/Casablanca")
    site.add_argument("--lat", type=float, default=None, help="latitude, degrees (WGS 84), for NGSI-LD location")
    site.add_argument("--lon", type=float, default=None, help="longitude, degrees (WGS 84), for NGSI-LD location")
    site.add_argument("--address", default=None, help="street address, one line")
    _db_arg(site)
    site.set_defaults(handler=run_create_site)
    dev = add_command(a, "create-device", help="register a device on a site; prints its device token")
    dev.add_argument("device_id", help="the device's id, as in its agent config")
    dev.add_argument("--site", required=True, help="the site it counts for")
    _db_arg(dev)
    dev.set_defaults(handler=run_create_device)
    am = add_command(a, "assign-model", help="assign a registered model (id or sha256 prefix) to a site or a device")
    am.add_argument("--model", required=True, help="registered model: its id or a sha256 prefix")
    grp = am.add_mutually_exclusive_group(required=True)
    grp.add_argument("--site", help="every device of this site")
    grp.add_argument("--device", help="this device only")
    _db_arg(am)
    am.set_defaults(handler=run_assign_model)
    rb = add_command(
        a, "rollback-model", help="assign the detector (or, with --classifier, the material classifier) a site or device had before"
    )
    grp = rb.add_mutually_exclusive_group(required=True)
    grp.add_argument("--site", help="every device of this site")
    grp.add_argument("--device", help="this device only")
    rb.add_argument("--classifier", action="store_true", help="roll back the material classifier; the detector stays as it is")
    _db_arg(rb)
    rb.set_defaults(handler=run_rollback_model)
    st = add_command(
        a,
        "set-target",
        help="purity targets on a line: a class's minimum and/or maximum share of its items over a rolling window",
        description="Example: --site berkane-c1 --line pet --min plastic=0.9 --max trash=0.05 --window-min 15 --min-items 20. "
        "A target given again replaces the old one. The dashboard shows each line red while one of its targets is breached.",
    )
    st.add_argument("--site", required=True, help="the site")
    st.add_argument("--line", required=True, help="the line's id within the site")
    st.add_argument("--min", action="append", default=[], metavar="CLASS=SHARE", help="CLASS makes at least SHARE (0-1) of the items")
    st.add_argument("--max", action="append", default=[], metavar="CLASS=SHARE", help="CLASS makes at most SHARE (0-1) of the items")
    st.add_argument("--window-min", type=int, default=15, help="rolling window in minutes (default 15)")
    st.add_argument("--min-items", type=int, default=20, help="items the window must hold before it is judged (default 20)")
    _db_arg(st)
    st.set_defaults(handler=run_set_target)
    sh = add_command(
        a,
        "set-shift",
        help="a named shift in the site's time zone (an end at or before the start runs into the next day)",
        description="Example: --site berkane-c1 --name night --start 22:00 --end 06:00. A shift given again replaces the old one.",
    )
    sh.add_argument("--site", required=True, help="the site")
    sh.add_argument("--name", required=True, help="the shift's name, e.g. morning")
    sh.add_argument("--start", required=True, metavar="HH:MM", help="start, site local time")
    sh.add_argument("--end", required=True, metavar="HH:MM", help="end, site local time")
    _db_arg(sh)
    sh.set_defaults(handler=run_set_shift)
    wh = add_command(
        a,
        "set-webhook",
        help="POST the site's alerts (opened, closed) as JSON to a URL, retried with backoff; --remove stops it",
        description="Each body is {type: alert.opened|alert.closed, site, alert}. With --secret-env, the header "
        "X-Farz-Signature: sha256=<HMAC-SHA256 of the body> lets the receiver check it came from this server.",
    )
    wh.add_argument("--site", required=True, help="the site whose alerts are sent")
    what = wh.add_mutually_exclusive_group(required=True)
    what.add_argument("--url", help="http:// or https:// address of the receiver")
    what.add_argument("--remove", action="store_true", help="remove the site's webhook")
    wh.add_argument("--secret-env", metavar="VAR", default=None, help="name of an environment variable holding the signing secret")
    _db_arg(wh)
    wh.set_defaults(handler=run_set_webhook)
    rep = add_command(
        s,
        "report",
        help="write a shift report (PDF, or JSON/CSV by the file's suffix) straight from the database",
        description="Example: farz server report --site berkane-c1 --date 2026-12-02 --shift morning --out morning.pdf. "
        "DATE is the local day the shift starts on. The figures are the ones /api/v1/reports/shift serves.",
    )
    rep.add_argument("--site", required=True, help="the site")
    rep.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="the day the shift starts, site local date")
    rep.add_argument("--shift", required=True, metavar="NAME", help="a shift set with `farz server admin set-shift`")
    rep.add_argument("--out", required=True, type=Path, metavar="FILE", help="FILE.pdf, FILE.json or FILE.csv")
    rep.add_argument("--config", type=Path, default=None, help="server settings YAML (for offline_after_s)")
    _db_arg(rep)
    rep.set_defaults(handler=run_report)
    push = add_command(s, "push-ngsi", help="upsert today's NGSI-LD entities into a FIWARE context broker (run it from cron or a timer)")
    push.add_argument("--broker", required=True, metavar="URL", help="context broker base URL, e.g. http://orion-ld:1026")
    push.add_argument("--context-url", required=True, help="public URL of this server's /ngsi-ld/context.jsonld")
    push.add_argument("--site", default=None, help="only this site")
    push.add_argument("--tenant", default=None, help="NGSILD-Tenant header")
    push.add_argument("--every", type=float, default=0.0, help="repeat every N seconds (0 = once)")
    _db_arg(push)
    push.set_defaults(handler=run_push_ngsi)
    tok = add_command(
        a,
        "create-token",
        help="make a viewer, installer (sets up device cameras), reader, scientist, reviewer (labels review crops of one site) "
        "or admin token; prints it",
    )
    tok.add_argument(
        "--role", required=True, choices=["viewer", "installer", "reader", "scientist", "reviewer", "admin"], help="what the token may do"
    )
    tok.add_argument("--site", default=None, help="limit the token to one site (a reviewer's token must name one)")
    tok.add_argument("--name", default=None, help="who holds it (a reviewer's name); their labels carry it")
    _db_arg(tok)
    tok.set_defaults(handler=run_create_token)


def register_bench(bench_sub: SubParsers) -> None:
    b = add_command(bench_sub, "server", help="ingest events/s through real HTTP and aggregate query latency")
    b.add_argument("--events", type=int, default=100_000, help="count events to ingest (default: %(default)s)")
    _db_arg(b)
    b.add_argument("--devices", type=int, default=8, help="devices sending at once (default: %(default)s)")
    b.add_argument("--queries", type=int, default=200, help="aggregate queries timed (default: %(default)s)")
    b.add_argument("--workers", type=int, default=1, help="server worker processes")
    b.add_argument(
        "--target-events", type=int, default=20_000, help="events for the side-by-side ingest into sites with and without purity targets"
    )
    b.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    b.set_defaults(handler=run_bench_server)


def run_migrate(args: argparse.Namespace) -> int:
    from server.migrate import migrate

    _report_regrouped(migrate(_database_url(args)))
    print(f"database at {_redact(_database_url(args))} is up to date")
    return 0


def _report_regrouped(regrouped: list[Any]) -> None:
    """One line on stderr per site whose day totals were made again under new time-zone rules."""
    for r in regrouped:
        if r.rules_before is not None or r.changed:
            before = r.rules_before or "the system's"
            print(
                f"site {r.site}: days re-summed under time-zone rules {r.rules_now} (were {before}): {r.changed} day totals changed",
                file=sys.stderr,
            )


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _admin(args: argparse.Namespace, action: Any) -> int:
    from server.db import make_engine, session_factory
    from server.migrate import migrate

    url = _database_url(args)
    _report_regrouped(migrate(url))
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

    return _admin(args, lambda session: create_token(session, args.role, site_id=args.site, name=args.name))


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


def run_set_shift(args: argparse.Namespace) -> int:
    from server.shifts import set_shift

    def action(session: Any) -> str:
        row = set_shift(session, args.site, args.name, args.start, args.end)
        return f"shift {row.name!r} on {args.site}: {row.start}-{row.end}" + (" (ends the next day)" if row.end <= row.start else "")

    return _admin(args, action)


def run_set_webhook(args: argparse.Namespace) -> int:
    from server.auth import AdminError
    from server.webhooks import set_webhook

    secret = None
    if args.secret_env:
        secret = os.environ.get(args.secret_env)
        if not secret:
            raise AdminError(f"--secret-env {args.secret_env}: that environment variable is not set or empty")

    def action(session: Any) -> str:
        set_webhook(session, args.site, None if args.remove else args.url, secret)
        if args.remove:
            return f"{args.site}: webhook removed"
        return f"{args.site}: alerts go to {args.url}" + (" (signed)" if secret else "")

    return _admin(args, action)


def run_report(args: argparse.Namespace) -> int:
    import datetime as dt

    from server.auth import AdminError
    from server.formats import csv_text
    from server.models import Site
    from server.reports import CSV_COLUMNS, csv_rows, shift_report
    from server.settings import Settings
    from server.shifts import find_shift

    suffix = args.out.suffix.lower()
    if suffix not in (".pdf", ".json", ".csv"):
        raise AdminError(f"--out {args.out}: name a .pdf, .json or .csv file")
    try:
        day = dt.date.fromisoformat(args.date)
    except ValueError:
        raise AdminError(f"--date {args.date!r} is not a date as YYYY-MM-DD") from None
    settings = Settings.load(args.config)

    def action(session: Any) -> str:
        site = session.get(Site, args.site)
        if site is None:
            raise AdminError(f"unknown site {args.site!r}")
        shift = find_shift(session, site.id, args.shift)
        report = shift_report(session, site, shift, day, settings.offline_after_s, settings.outbox_alert_depth)
        if suffix == ".pdf":
            from server.report_pdf import render_pdf

            data = render_pdf(report)
        elif suffix == ".json":
            data = report.model_dump_json(indent=2, by_alias=True).encode()
        else:
            data = csv_text(csv_rows(report), CSV_COLUMNS).encode()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(data)
        t = report.totals
        shift = f"shift {report.shift.name} of {report.shift.date}"
        return f"{args.out}: {shift}, {t.total_in} items in, {t.total_out} out, {len(report.alerts)} alerts"

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
    _report_regrouped(migrate(settings.database_url))
    if args.config is not None:
        os.environ["FARZ_SERVER_CONFIG"] = str(args.config)
    uvicorn.run(
        "server.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=max(0.0, args.shutdown_timeout),
    )
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
