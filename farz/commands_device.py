"""``farz device init | check-config | check-scene | run``: the agent that runs at a sorting point."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from farz.parsing import SubParsers, add_command

if TYPE_CHECKING:
    from device.config import AgentConfig
    from device.count_config import CountSettings

EXIT_NOT_UPLOADED = 5


def register(sub: SubParsers) -> None:
    """Add ``device`` and its subcommands to the top-level parser."""
    dev = add_command(sub, "device", help="the device agent: camera → counts → outbox → server, with a live view")
    dev_sub = dev.add_subparsers(dest="device", metavar="STEP", required=True)
    init = add_command(
        dev_sub,
        "init",
        help="write a commented example config and a device-local live-view token",
        description=(
            "Write a commented example agent config. With --out, also make the device-local installer token for the live view "
            "(LIVEVIEW.token beside the config, mode 0600), name it in the config and print it once: it opens the live view and "
            "its setup page without a server."
        ),
    )
    init.add_argument("--out", type=Path, default=None, help="file to write (default: print the example config)")
    init.set_defaults(handler=run_init)
    check = add_command(dev_sub, "check-config", help="validate a config file and report every problem with its location")
    check.add_argument("config", type=Path, help="agent YAML (see `farz device init`)")
    check.set_defaults(handler=run_check)
    scene = add_command(
        dev_sub,
        "check-scene",
        help="count a minute of empty belt and propose ignore zones where false items appear (rails, stains, joints)",
        description=(
            "Run the device's pipeline over a stretch of EMPTY belt — a video file or the live camera — with the ignore zones "
            "already set: every track it finds is a false item. Prints how many, what the line would have counted, and one "
            "ignore zone (a 0-1 rectangle around where their boxes were centred) per cluster of them, as YAML for the "
            "config's count.ignore; --save writes them into the --config file (atomically, the old one kept as .bak). "
            "Run it again afterwards: it should find nothing. Exit codes: 0 no false item, 4 false items found, 3 bad input."
        ),
    )
    scene.add_argument("source", nargs="?", default=None, help="PATH | rtsp://… | usb:N | picamera (default: the config's source)")
    scene.add_argument("--config", type=Path, default=None, help="agent YAML: its source, models, lines and ignore zones")
    scene.add_argument("--seconds", type=float, default=60.0, help="footage to check (default 60)")
    scene.add_argument("--model", type=Path, default=None, help="ONNX item detector (default: the config's, else the bundled INT8 file)")
    scene.add_argument("--classifier", default=None, metavar="PATH|none", help="material classifier (default: the config's)")
    scene.add_argument("--min-frames", type=int, default=3, help="a track seen in fewer frames is not reported (default 3)")
    scene.add_argument("--save", action="store_true", help="add the proposed zones to the --config file's count.ignore")
    scene.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    scene.set_defaults(handler=run_check_scene)
    run = add_command(
        dev_sub,
        "run",
        help="run the agent",
        description=(
            "Count items from the configured source, keep every count in the outbox (SQLite) and upload it to the server. "
            "Flags override the config file. SIGTERM or Ctrl-C stops cleanly after flushing the outbox. "
            "Exit codes: 0 ok, 3 bad config or input, 5 --once ended with events not yet uploaded."
        ),
    )
    run.add_argument("--config", type=Path, default=None, help="agent YAML (see `farz device init`)")
    run.add_argument("--source", default=None, help="PATH | rtsp://… | http://… | usb:N | picamera")
    run.add_argument("--server", default=None, metavar="URL", help="server base URL")
    run.add_argument(
        "--token-file", type=Path, default=None, help="file holding the device token (`farz server admin create-device` prints it)"
    )
    run.add_argument("--device-id", default=None, help="the device's id on the server (default: the config's)")
    run.add_argument("--model", type=Path, default=None, help="ONNX item detector (default: the config's, else the bundled INT8 file)")
    run.add_argument(
        "--classifier",
        default=None,
        metavar="PATH|none",
        help="material classifier (default: the config's, else the bundled models/farz-material.int8.onnx); none: the detector's classes",
    )
    run.add_argument("--line", default=None, metavar="x1,y1,x2,y2", help="count line in 0-1 image coordinates")
    run.add_argument("--data-dir", type=Path, default=None, help="outbox and replay state")
    run.add_argument("--live-port", type=int, default=None, help="live view port (0 = any free port)")
    run.add_argument("--no-live-view", action="store_true", help="serve no live view")
    run.add_argument("--realtime", action="store_true", help="pace a video file at its frame rate")
    run.add_argument("--loop", action="store_true", help="start a video file again when it ends (demos)")
    run.add_argument("--once", action="store_true", help="a file source: run to its end, upload everything, exit")
    run.add_argument("--flush-timeout", type=float, default=30.0, help="seconds to keep uploading at exit")
    run.add_argument("--json", action="store_true", help="with --once: print the same JSON summary as `farz count --json`")
    run.set_defaults(handler=run_agent)


def run_init(args: argparse.Namespace) -> int:
    from device.config import EXAMPLE_CONFIG
    from device.liveauth import ensure_local_token

    if args.out is None:
        sys.stdout.write(EXAMPLE_CONFIG)
        print("# no --out: the agent makes its live-view token in DATA_DIR/liveview.token on first start", file=sys.stderr)
        return 0
    if args.out.exists():
        print(f"farz device init: {args.out} exists; not overwriting it", file=sys.stderr)
        return 3
    token_path = args.out.resolve().with_name("liveview.token")
    try:
        token = ensure_local_token(token_path)
        args.out.write_text(EXAMPLE_CONFIG.replace("  token_file: null", f"  token_file: {token_path}"))
    except OSError as exc:
        print(f"farz device init: cannot write {args.out} or {token_path}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    print(f"wrote {args.out}; edit it, then `farz device check-config {args.out}`")
    print(f"live view installer token (kept in {token_path}, shown only now): {token}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from device.config import load_agent_config

    config = load_agent_config(args.config)
    problems = []
    if not config.model.is_file():
        problems.append(f"{args.config}: model: {config.model} does not exist")
    if config.classifier is not None and not config.classifier.is_file():
        problems.append(f"{args.config}: classifier: {config.classifier} does not exist (null counts with the detector's classes)")
    if config.token_file is not None and not config.token_file.is_file():
        problems.append(f"{args.config}: token_file: {config.token_file} does not exist")
    if config.server_url and config.token_file is None:
        problems.append(f"{args.config}: token_file: needed to upload to {config.server_url}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 3
    print(f"{args.config}: ok (device {config.device_id}, source {config.source.split('@')[-1]})")
    return 0


_NO_CLASSIFIER = "none"


def _classifier_override(value: str | None) -> str | None:
    """``--classifier``: a path, or ``none`` (kept as a marker, turned into null after the overrides)."""
    return None if value is None else (_NO_CLASSIFIER if value.lower() == "none" else value)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    line = None
    if args.line is not None:
        from vision.counter import LineSpec

        spec = LineSpec.parse(args.line)
        line = [{"name": "line-1", "points": [spec.x1, spec.y1, spec.x2, spec.y2], "anchor": spec.anchor}]
    return {
        "source": args.source,
        "server_url": args.server,
        "token_file": str(args.token_file) if args.token_file else None,
        "device_id": args.device_id,
        "model": str(args.model) if args.model else None,
        "classifier": _classifier_override(args.classifier),
        "count.lines": line,
        "data_dir": str(args.data_dir) if args.data_dir else None,
        "live_view.port": args.live_port,
        "live_view.enabled": False if args.no_live_view else None,
        "realtime": True if args.realtime else None,
        "loop": True if args.loop else None,
    }


def run_check_scene(args: argparse.Namespace) -> int:
    import json

    import yaml

    from device.agent import is_file_source
    from device.count import build_pipeline
    from device.count_config import ConfigError
    from device.live_sources import open_live_source
    from device.scene_check import check_scene
    from device.setup import SetupError, save_count_settings
    from device.sources import VideoFileSource

    if args.seconds <= 0 or args.min_frames < 1:
        raise ConfigError("--seconds must be above 0 and --min-frames at least 1")
    if args.save and args.config is None:
        raise ConfigError("--save writes the zones into an agent config: give it with --config")
    if args.source is None and args.config is None:
        raise ConfigError("no source: give a video file or camera (PATH | rtsp://… | usb:N | picamera), or --config")
    model = str(args.model) if args.model else None
    config = _agent_config(args.config, {"source": args.source, "model": model, "classifier": _classifier_override(args.classifier)})
    source = config.source
    settings = _count_with_lines(config)
    pipeline = build_pipeline(config.model, settings, config.classifier)
    taken = [r.name for r in settings.ignore]
    lines = [line.points for line in settings.lines]
    if is_file_source(source):
        with VideoFileSource(Path(source)) as frames:
            report = check_scene(frames, pipeline, frames.info.fps or 15.0, args.seconds, source, args.min_frames, taken, lines=lines)
    else:
        live = open_live_source(source)
        try:
            report = check_scene(live, pipeline, 15.0, args.seconds, source, args.min_frames, taken, wall_clock=True, lines=lines)
        finally:
            live.close()
    saved = None
    if args.save and report.safe_zones and args.config is not None:
        try:
            zones = [*config.count.ignore, *report.safe_zones]
            saved = save_count_settings(args.config, config.count.model_copy(update={"ignore": zones}))
        except SetupError as exc:
            raise ConfigError(str(exc)) from None
    if args.json:
        print(json.dumps({**report.to_json(), "saved": str(args.config) if saved else None}))
    else:
        counted = sum(n for per in report.counted.values() for n in per.values())
        print(
            f"{report.source}: {report.seconds:.0f} s ({report.frames} frames) of empty belt: "
            f"{len(report.false_items)} false item{'' if len(report.false_items) == 1 else 's'} "
            f"({report.per_minute:.1f} a minute), {counted} counted"
        )
        for item in report.false_items:
            x1, y1, x2, y2 = item.centres
            rides = ", rode with the belt" if item.rides_belt else ""
            print(f"  track {item.track_id}: {item.frames} frames, centred in x {x1:.2f}-{x2:.2f}, y {y1:.2f}-{y2:.2f}{rides}")
        if report.riders:
            print(
                f"{len(report.riders)} of them rode with the belt (cleats, stains, joints): an ignore zone cannot drop them "
                "without hiding the belt, so none is proposed for them. Keep this footage for retraining the detector on such "
                "belts, or raise count.confidence in the config."
            )
        if report.zones:
            section = {"count": {"ignore": [z.model_dump(mode="json") for z in report.zones]}}
            snippet = yaml.safe_dump(section, sort_keys=False, default_flow_style=None)
            print("proposed ignore zones (detections centred inside are dropped):\n" + snippet.rstrip())
            for name in report.on_belt:
                print(f"{name} lies where a false item rode with the belt, so on the belt: it would hide real items. Not saved.")
            for name in report.across_lines:
                print(
                    f"{name} lies across a count line: it would hide real items crossing there. A false item that travels "
                    "with the belt (a stain, a joint) needs the detector retrained on such belts; this zone is not saved."
                )
            hint = "add the zones that may be saved to the config's count.ignore, or rerun with --config FILE --save"
            if not report.safe_zones:
                hint = "none of them may be saved"
            print(f"saved into {args.config} (the previous file is {saved})" if saved else hint)
    return 4 if report.false_items else 0


def _agent_config(path: Path | None, overrides: dict[str, object]) -> AgentConfig:
    """The agent config at ``path``, or the bundled models' defaults, with ``overrides`` (dotted keys; None: keep)."""
    from device.config import agent_config_from, load_agent_config

    if path is not None:
        return load_agent_config(path, overrides)
    raw: dict[str, Any] = {
        "device_id": "local",
        "data_dir": "farz-data",
        "model": str(Path(__file__).resolve().parent.parent / "models" / "farz-waste.int8.onnx"),
        "classifier": str(Path(__file__).resolve().parent.parent / "models" / "farz-material.int8.onnx"),
    }
    return agent_config_from(raw, overrides, Path("(command line)"))


def _count_with_lines(config: AgentConfig) -> CountSettings:
    """The config's count settings; with no line or zone given, the video's own NAME.yaml's, else the default line."""
    from device.agent import is_file_source
    from device.count_config import settings_for_video

    if config.count.lines or config.count.zones:
        return config.count
    beside = settings_for_video(Path(config.source) if is_file_source(config.source) else Path("-"), None, None)
    return config.count.model_copy(update={"lines": beside.lines, "zones": beside.zones})


def run_agent(args: argparse.Namespace) -> int:
    from device.agent import Agent, is_file_source
    from device.count_config import ConfigError

    config = _agent_config(args.config, _overrides(args))
    config.count = _count_with_lines(config)
    if args.once and not is_file_source(config.source):
        raise ConfigError("--once needs a video file source")
    logging.basicConfig(level=config.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    agent = Agent(config, config_path=args.config)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("farz.agent").info("signal %d: stopping after this frame and flushing the outbox", signum)
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    summary = agent.run()
    left = agent.shutdown(args.flush_timeout)
    if args.json:
        print(summary.to_json())
    if args.once and left and config.server_url:
        print(f"farz device run: {left} events are not uploaded yet (server unreachable?); they stay in the outbox", file=sys.stderr)
        return EXIT_NOT_UPLOADED
    return 0
