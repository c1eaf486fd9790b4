"""``farz count``, ``farz demo`` and ``farz bench edge``: argument parsing and output formatting."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from farz.parsing import SubParsers, add_command


def _default_model() -> Path:
    from device.count import DEFAULT_MODEL

    return DEFAULT_MODEL


CLASSIFIER_HELP = (
    "material classifier (ONNX, task classify) voted per track over crops of the detector's boxes "
    "(default: the bundled models/farz-material.int8.onnx); `none` counts with the detector's own classes"
)


def quarter_turns(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` → (0, 1, 2): quarter turns 0-3, at least one."""
    try:
        turns = tuple(int(v) for v in text.split(","))
    except ValueError:
        turns = ()
    if not turns or any(not 0 <= k <= 3 for k in turns):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of quarter turns 0-3, e.g. 0,1,2")
    return turns


def add_turns_argument(parser: argparse.ArgumentParser) -> None:
    """``--turns K,K,...``: the quarter turns of a track's crops (``vision.MaterialSettings.turns``)."""
    parser.add_argument(
        "--turns",
        type=quarter_turns,
        default=None,
        metavar="K,K,...",
        help="two-stage: quarter turns of a track's 1st, 2nd, ... crop before it is classified, e.g. 0,1,2 (0: never turned)",
    )


def add_classifier_argument(parser: argparse.ArgumentParser) -> None:
    """``--classifier PATH|none`` (the two-stage pipeline's second stage)."""
    parser.add_argument("--classifier", default=None, metavar="PATH|none", help=CLASSIFIER_HELP)


def classifier_path(args: argparse.Namespace) -> Path | None:
    """The classifier a command runs with: ``--classifier`` or the bundled file; None for ``none``."""
    from device.count import DEFAULT_CLASSIFIER

    value: str | None = args.classifier
    if value is None:
        return DEFAULT_CLASSIFIER
    return None if value.lower() == "none" else Path(value)


def register(sub: SubParsers) -> None:
    """Add ``count``, ``demo`` and ``bench`` to the top-level parser."""
    count = add_command(
        sub,
        "count",
        help="count the items crossing a line in a video file",
        description=(
            "Count every item crossing the count line of VIDEO, by class and direction. Settings come from --config, "
            "else from NAME.yaml beside the video, else a vertical line through the middle (left-to-right = in)."
        ),
    )
    count.add_argument("video", type=Path, metavar="VIDEO", help="a video file (mp4, avi, mkv, ...)")
    count.add_argument("--model", type=Path, default=None, help="ONNX detector (default: the bundled models/farz-waste.int8.onnx)")
    count.add_argument(
        "--line",
        default=None,
        metavar="x1,y1,x2,y2",
        help="count line in 0-1 image coordinates; a crossing to the side "
        "where (x2-x1)*(y-y1)-(y2-y1)*(x-x1) > 0 is `in` (a left-to-right line: top-to-bottom motion is `in`)",
    )
    count.add_argument("--config", type=Path, default=None, help="YAML settings: line(s), zones, confidence, iou, threads")
    count.add_argument("--events", type=Path, default=None, metavar="OUT.jsonl", help="write every count event as one JSON line")
    count.add_argument("--save", type=Path, default=None, metavar="OUT.mp4", help="write the annotated video")
    count.add_argument("--json", action="store_true", help="print exactly one JSON object with the totals on stdout")
    add_classifier_argument(count)
    count.set_defaults(handler=run_count)

    demo = add_command(
        sub,
        "demo",
        help="the whole product on this machine: server, device agents on the sample videos, dashboard",
        description="Starts the server on loopback (SQLite), creates a demo site, devices and tokens, runs one device "
        "agent per bundled sample video with the bundled INT8 model (real-time, looping until Ctrl-C), and prints the "
        "dashboard URL, the live views and a city read token. Nothing is downloaded.",
    )
    demo.add_argument("--model", type=Path, default=None, help="ONNX detector (default: the bundled INT8 model)")
    add_classifier_argument(demo)
    demo.add_argument("--video", type=Path, action="append", default=None, help="video(s) to use (default: datasets/samples/*.mp4)")
    demo.add_argument("--data", type=Path, default=None, help="folder for the database, outboxes and logs (default: a new temp folder)")
    demo.add_argument("--port", type=int, default=8000, help="server port (another free one if taken)")
    demo.add_argument("--live-port", type=int, default=8081, help="first device live-view port")
    demo.add_argument(
        "--once", action="store_true", help="play each video once, then check that the server has exactly the devices' counts"
    )
    demo.set_defaults(handler=run_demo)

    bench = add_command(sub, "bench", help="benchmarks that print ratios measured side by side")
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCH", required=True)
    edge = add_command(
        bench_sub,
        "edge",
        help="frames/s and count error: bare ONNX vs our pipeline vs Ultralytics vs supervision",
        description="Measures, on the same frames in one run: bare preprocess+session.run, the farz pipeline, "
        "Ultralytics solutions.ObjectCounter (training extra) and supervision ByteTrack+LineZone on our detections.",
    )
    edge.add_argument("--video", type=Path, required=True, help="video file to run on")
    edge.add_argument("--model", type=Path, default=None, help="ONNX detector (default: the bundled INT8 model)")
    edge.add_argument("--truth", type=Path, default=None, help="NAME.truth.json with true counts (default: the one beside the video)")
    edge.add_argument("--frames", type=int, default=0, help="use only the first N frames (0 = all)")
    edge.add_argument("--rounds", type=int, default=3, help="passes over the video, each from a fresh state (frames/s over all)")
    edge.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    edge.add_argument(
        "--sure-enough", type=float, default=None, help="two-stage: voted probability after which a track takes no more crops (1.0: all)"
    )
    add_turns_argument(edge)
    add_classifier_argument(edge)
    edge.set_defaults(handler=run_bench_edge)
    from farz.commands_server import register_bench

    register_bench(bench_sub)
    agent = add_command(
        bench_sub,
        "agent",
        help="the device agent's frames/s against `farz count` on the same file, and its peak memory",
        description="Runs `farz count` and `farz device run --once` alternately on VIDEO with one agent config (the video's line, "
        "two privacy masks, a token-protected live view watched twice a second, uploads to a loopback sink) and prints "
        "agent frames/s over count frames/s (measured in the same run) and each one's peak resident memory.",
    )
    agent.add_argument("--video", type=Path, required=True, help="a belt video (its NAME.yaml line is used when present)")
    agent.add_argument("--model", type=Path, default=None, help="ONNX detector (default: the bundled INT8 model)")
    agent.add_argument("--rounds", type=int, default=4, help="alternate runs of each; the best is kept (the sample is short: 4 by default)")
    agent.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    add_classifier_argument(agent)
    agent.set_defaults(handler=run_bench_agent)


def _parse_line(text: str | None) -> Any:
    from vision.counter import LineSpec

    return None if text is None else LineSpec.parse(text)


def run_count(args: argparse.Namespace) -> int:
    """Count one video and print totals (a table, or one JSON object with --json)."""
    from device.count import count_video
    from device.count_config import settings_for_video
    from device.sources import probe_video

    video: Path = args.video
    probe_video(video)
    settings = settings_for_video(video, args.config, _parse_line(args.line))
    model = args.model or _default_model()
    events_file = args.events.open("w") if args.events else None
    try:

        def on_event(event: Any) -> None:
            if events_file is not None:
                events_file.write(
                    json.dumps(
                        {
                            "frame": event.frame_index,
                            "line": event.line,
                            "class": event.class_name,
                            "direction": event.direction,
                            "track_id": event.track_id,
                            "confidence": round(event.confidence, 4),
                        }
                    )
                    + "\n"
                )

        summary = count_video(
            video,
            model,
            settings,
            on_event=on_event,
            save=args.save,
            progress=sys.stderr.isatty() or not args.json,
            classifier=classifier_path(args),
        )
    finally:
        if events_file is not None:
            events_file.close()
    if args.json:
        print(summary.to_json())
    else:
        print(format_counts(summary.counts))
        print(f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} frames/s)")
    return 0


def format_counts(counts: dict[str, dict[str, int]], truth: dict[str, dict[str, int]] | None = None) -> str:
    """A small table of counts per class and direction (with truth columns when given)."""
    classes = sorted({c for d in counts.values() for c in d} | ({c for d in truth.values() for c in d} if truth else set()))
    header = f"{'class':<12}{'in':>6}{'out':>6}" + (f"{'true in':>9}{'true out':>10}" if truth else "")
    rows = [header]
    for c in classes:
        row = f"{c:<12}{counts.get('in', {}).get(c, 0):>6}{counts.get('out', {}).get(c, 0):>6}"
        if truth:
            row += f"{truth.get('in', {}).get(c, 0):>9}{truth.get('out', {}).get(c, 0):>10}"
        rows.append(row)
    if not classes:
        rows.append("(nothing counted)")
    return "\n".join(rows)


def run_demo(args: argparse.Namespace) -> int:
    """Server + one device agent per sample video + dashboard (see farz/demo.py)."""
    from device.count import SAMPLES
    from farz import demo

    videos = args.video or sorted(SAMPLES.glob("*.mp4"))
    if not videos:
        print(f"farz demo: no sample videos in {SAMPLES}", file=sys.stderr)
        return 3
    for video in videos:
        if not video.is_file():
            raise FileNotFoundError(f"{video}: no such video")
    return demo.run(videos, args.model or _default_model(), args.data, args.port, args.live_port, args.once, classifier_path(args))


def run_bench_agent(args: argparse.Namespace) -> int:
    """Print the agent benchmark."""
    from bench.agent import bench_agent

    result = bench_agent(args.video, args.model or _default_model(), args.rounds, classifier_path(args))
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"farz count {result['count_fps']} frames/s, agent {result['agent_fps']} frames/s "
            f"({result['agent_over_count']}x); peak memory: agent {result['agent_peak_rss_mb']} MB, "
            f"count {result['count_peak_rss_mb']} MB; "
            f"{result['privacy_masks']} privacy masks, live view watched with a token ({result['live_view_requests_served']} answers, "
            f"{result['live_view_requests_refused']} refused without one)"
        )
    return 0


def run_bench_edge(args: argparse.Namespace) -> int:
    """Print the edge benchmark table or JSON."""
    from bench.edge import bench_edge, format_table
    from vision import MaterialSettings

    chosen = {"sure_enough": args.sure_enough, "turns": args.turns}
    material = MaterialSettings(**{k: v for k, v in chosen.items() if v is not None})
    result = bench_edge(
        args.video,
        args.model or _default_model(),
        args.truth,
        max_frames=args.frames,
        rounds=args.rounds,
        classifier=classifier_path(args),
        material=material,
    )
    print(json.dumps(result) if args.json else format_table(result))
    return 0
