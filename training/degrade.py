"""Degraded copies of belt videos with truth: how far the counts hold when the picture gets worse.

Each degradation is what a camera at a sorting point does to a picture that the renders do not: a dim hall
(under-exposed, with the sensor noise a raised gain brings), sensor noise alone, a lens out of focus, a stream
compressed hard, lamps of another colour, an over-exposed belt, half the frame rate (items move twice as far
between frames), a larger frame (a higher-resolution camera), a camera turned to the belt (the belt at a
slant in the picture), a camera on a vibrating mount, a slow shutter (motion blur along the belt) and a belt
that stops with items on the line. A copy keeps the video's name, ``NAME.yaml`` and ``NAME.truth.json`` (with
frame numbers and speeds moved to the new frame rate and the stops, and lines and item positions turned with
the picture), so ``farz train count-eval`` judges it item by item as it judges the original.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.truth import truth_path
from training.synth import jpeg
from vision.turn import turn_onto_canvas

Frame = np.ndarray
Rng = np.random.Generator
BeltStep = tuple[float, float]  # px per frame the belt moves (x, y), from the video's truth


def _scaled(frame: Frame, gain: float | np.ndarray, offset: float = 0.0, noise: float = 0.0, rng: Rng | None = None) -> Frame:
    out = frame.astype(np.float32) * gain + offset
    if noise > 0 and rng is not None:
        out += rng.normal(0.0, noise, frame.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Degradation:
    """A change to every frame (``apply``: BGR uint8 (H, W, 3) → BGR uint8, any size) and to the frame rate
    (keep one frame in ``frame_step``)."""

    name: str
    description: str
    apply: Callable[[Frame, Rng], Frame]
    frame_step: int = 1
    degrees: float = 0.0  # the picture turned by this much (counterclockwise on screen) onto a canvas that holds it all
    fill: bool = False  # with ``degrees``: turned and enlarged within its own frame instead, so that no corner is empty
    along_belt: Callable[[BeltStep], Callable[[Frame, Rng], Frame]] | None = None  # given the belt's motion: used instead of ``apply``
    stop_seconds: float = 0.0  # the belt stops this long as every third item is about to cross (its frame held)


def turn_matrix(width: int, height: int, degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The affine map (2, 3) of a ``width`` x ``height`` picture turned by ``degrees`` about its centre onto a
    canvas that holds it all, and that canvas's (width, height) px (even, for video encoders)."""
    return turn_onto_canvas(width, height, degrees, lambda side: int(side) // 2 * 2)


def turned_point(turn: np.ndarray, width: int, height: int, canvas: tuple[int, int], x: float, y: float) -> tuple[float, float]:
    """A point (0-1 of the ``width`` x ``height`` picture) where ``turn`` takes it, 0-1 of ``canvas``."""
    p = turn @ np.array([x * width, y * height, 1.0])
    return float(p[0] / canvas[0]), float(p[1] / canvas[1])


def _turned(degrees: float) -> Callable[[Frame, Rng], Frame]:
    def apply(f: Frame, rng: Rng) -> Frame:
        turn, size = turn_matrix(f.shape[1], f.shape[0], degrees)
        return cv2.warpAffine(f, turn, size, flags=cv2.INTER_LINEAR, borderValue=(90, 90, 90))

    return apply


def roll_matrix(width: int, height: int, degrees: float) -> np.ndarray:
    """The affine map (2, 3) of a ``width`` x ``height`` picture turned by ``degrees`` about its centre and enlarged
    just enough that the turned picture covers its own frame: what a camera rolled by ``degrees`` sees of the scene."""
    c, s = abs(np.cos(np.radians(degrees))), abs(np.sin(np.radians(degrees)))
    zoom = max((width * c + height * s) / width, (width * s + height * c) / height)
    return np.asarray(cv2.getRotationMatrix2D((width / 2, height / 2), degrees, zoom), np.float64)


def picture_map(width: int, height: int, degrees: float, fill: bool = False) -> tuple[np.ndarray, tuple[int, int]]:
    """The affine map (2, 3) of a ``width`` x ``height`` picture turned by ``degrees`` and the canvas (width, height) px
    it lands on: one that holds it all (``turn_matrix``), or with ``fill`` its own frame (``roll_matrix``)."""
    return (roll_matrix(width, height, degrees), (width, height)) if fill else turn_matrix(width, height, degrees)


def _rolled(degrees: float) -> Callable[[Frame, Rng], Frame]:
    def apply(f: Frame, rng: Rng) -> Frame:
        return cv2.warpAffine(f, roll_matrix(f.shape[1], f.shape[0], degrees), (f.shape[1], f.shape[0]), flags=cv2.INTER_LINEAR)

    return apply


def clipped_segment(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float, float, float] | None:
    """The part of the segment ``a``-``b`` (0-1 of the frame) inside the frame, or None when none of it is."""
    lo, hi = 0.0, 1.0
    d = (b[0] - a[0], b[1] - a[1])
    for start, step in ((a[0], d[0]), (a[1], d[1])):
        if step == 0:
            if not 0.0 <= start <= 1.0:
                return None
            continue
        t0, t1 = sorted(((0.0 - start) / step, (1.0 - start) / step))
        lo, hi = max(lo, t0), min(hi, t1)
    if lo >= hi:
        return None
    return (a[0] + lo * d[0], a[1] + lo * d[1], a[0] + hi * d[0], a[1] + hi * d[1])


def rolled_truth(truth: dict[str, object], width: int, height: int, degrees: float) -> dict[str, object]:
    """``truth`` for the picture rolled by ``degrees`` (``roll_matrix``): its line turned and cut to the frame, each
    crossing's centre, size and velocity turned and enlarged; a crossing whose centre leaves the frame is out of
    sight and dropped, and the counts are those of the crossings kept."""
    return _mapped_truth(truth, width, height, *picture_map(width, height, degrees, fill=True), in_sight_only=True)


def _mapped_truth(
    truth: dict[str, object], width: int, height: int, turn: np.ndarray, canvas: tuple[int, int], in_sight_only: bool
) -> dict[str, object]:
    """``truth`` for the ``width`` x ``height`` picture mapped by the affine ``turn`` (2, 3) onto ``canvas`` (width,
    height) px: the line mapped and cut to the canvas, each crossing's centre and velocity mapped and its size the
    upright box around the mapped one (0-1 of the canvas); with ``in_sight_only`` a crossing whose centre leaves
    the canvas is dropped and the counts are those of the crossings kept."""
    a, b = abs(turn[0, 0]), abs(turn[0, 1])  # cos and sin of the turn, times its zoom
    cw, ch = canvas

    def point(x: float, y: float) -> tuple[float, float]:
        return turned_point(turn, width, height, canvas, x, y)

    out = dict(truth)
    line = truth.get("line")
    if isinstance(line, list) and len(line) == 4:
        cut = clipped_segment(point(line[0], line[1]), point(line[2], line[3]))
        out["line"] = [round(v, 5) for v in cut] if cut else line
    crossings = truth.get("crossings")
    if isinstance(crossings, list):
        kept = []
        for cr in crossings:
            x, y = point(float(cr["x"]), float(cr["y"]))
            if in_sight_only and not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                continue
            w, h = float(cr["w"]) * width, float(cr["h"]) * height
            v = turn[:, :2] @ np.array([float(cr["vx"]) * width, float(cr["vy"]) * height])
            kept.append({**cr, "x": x, "y": y, "w": (w * a + h * b) / cw, "h": (w * b + h * a) / ch, "vx": v[0] / cw, "vy": v[1] / ch})
        out["crossings"] = kept
        if in_sight_only:
            counts: dict[str, dict[str, int]] = {"in": {}, "out": {}}
            for cr in kept:
                side = counts.setdefault(str(cr["direction"]), {})
                side[str(cr["class"])] = side.get(str(cr["class"]), 0) + 1
            out["counts"], out["items"] = counts, len(kept)
    return out


def _dark(f: Frame, rng: Rng) -> Frame:
    return _scaled(f, 0.35, noise=5.0, rng=rng)


def _noise(f: Frame, rng: Rng) -> Frame:
    return _scaled(f, 1.0, noise=14.0, rng=rng)


def _blur(f: Frame, rng: Rng) -> Frame:
    return cv2.GaussianBlur(f, (0, 0), 2.0)


def _compressed(f: Frame, rng: Rng) -> Frame:
    return jpeg(f, 15)


def _faint_noise(f: Frame, rng: Rng) -> Frame:
    return _scaled(f, 1.0, noise=3.0, rng=rng)


def _cast(f: Frame, rng: Rng) -> Frame:
    return _scaled(f, np.array([0.7, 1.0, 1.25], np.float32))


def _bright(f: Frame, rng: Rng) -> Frame:
    return _scaled(f, 1.6, 20.0)


def _shaken(f: Frame, rng: Rng) -> Frame:
    reach = 0.01 * max(f.shape[:2])
    dx, dy = rng.uniform(-reach, reach, 2)
    return cv2.warpAffine(f, np.array([[1, 0, dx], [0, 1, dy]], np.float32), (f.shape[1], f.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def motion_blurred(f: Frame, step: BeltStep, shutter: float = 0.5) -> Frame:
    """``f`` smeared along ``step`` (px per frame) by ``shutter`` of it: what a shutter open for that share of
    the frame time records of a moving belt."""
    dx, dy = step[0] * shutter, step[1] * shutter
    length = round(float(np.hypot(dx, dy)))
    if length < 2:
        return f
    kernel = np.zeros((2 * length + 1, 2 * length + 1), np.float32)
    for t in np.linspace(-0.5, 0.5, 4 * length + 1):
        kernel[round(length + float(t) * dy), round(length + float(t) * dx)] += 1.0
    return cv2.filter2D(f, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REPLICATE)


def _smeared(step: BeltStep) -> Callable[[Frame, Rng], Frame]:
    return lambda f, rng: motion_blurred(f, step)


def belt_step(truth: dict[str, object], width: int, height: int) -> BeltStep:
    """The belt's motion, px per frame: the median velocity of the items in ``truth`` (0, 0 without any)."""
    crossings = truth.get("crossings")
    if not isinstance(crossings, list) or not crossings:
        return (0.0, 0.0)
    vx = float(np.median([float(c["vx"]) for c in crossings])) * width
    vy = float(np.median([float(c["vy"]) for c in crossings])) * height
    return (vx, vy)


def _same(f: Frame, rng: Rng) -> Frame:
    return f


def _larger(f: Frame, rng: Rng) -> Frame:
    return cv2.resize(f, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_LINEAR)


DEGRADATIONS: dict[str, Degradation] = {
    d.name: d
    for d in (
        Degradation("dark", "a dim hall: 0.35 of the light, sensor noise of 5 grey levels", _dark),
        Degradation("noise", "sensor noise of 14 grey levels (a small sensor at a high gain)", _noise),
        Degradation("blur", "a lens out of focus: Gaussian blur of 2 px", _blur),
        Degradation("jpeg", "a stream compressed hard: every frame through JPEG at quality 15", _compressed),
        Degradation("cast", "warm lamps: blue 0.7, red 1.25 of the light", _cast),
        Degradation("bright", "an over-exposed belt: 1.6 of the light plus 20 grey levels", _bright),
        Degradation("half-fps", "half the frame rate: every other frame dropped", _same, frame_step=2),
        Degradation("upscale", "a larger frame: 2.5 times the width and height", _larger),
        Degradation("slant", "a camera turned 20 degrees to the belt: the picture turned, its corners grey", _turned(20.0), degrees=20.0),
        Degradation(
            "roll",
            "a camera rolled 20 degrees to the belt that sees the scene to its edges: the picture turned and enlarged "
            "until no corner is empty; items that cross out of sight leave the truth",
            _rolled(20.0),
            degrees=20.0,
            fill=True,
        ),
        Degradation("shake", "a camera on a vibrating mount: each frame shifted up to 1 % of its long side each way", _shaken),
        Degradation(
            "stop-go",
            "the belt stops for 2 s as every third item is about to cross the line: its frame held, with sensor noise of 3 grey levels",
            _faint_noise,
            stop_seconds=2.0,
        ),
        Degradation(
            "motion-blur",
            "a slow shutter: the belt and what rides on it smeared along the belt by half a frame's travel",
            _same,
            along_belt=_smeared,
        ),
    )
}


def belt_stops(truth: dict[str, object], frames: int, clear: int = 4) -> dict[int, int]:
    """Where the belt stops and for how many frames (0-based frame after which the picture is held → frames held):
    as every third item in ``truth`` is about to cross, its leading edge at the line (its centre half its length
    before it, at least 2 frames), for ``frames`` each. A stop within ``clear`` frames of another item's crossing is
    left out: an item crossing as the belt stops may be counted on either side of the stop, which the truth's one
    crossing frame cannot say."""
    crossings = truth.get("crossings")
    if not isinstance(crossings, list) or frames <= 0:
        return {}
    ordered = sorted(crossings, key=lambda c: int(c["frame"]))
    stops: dict[int, int] = {}
    for i in range(0, len(ordered), 3):
        c = ordered[i]
        vx, vy = abs(float(c["vx"])), abs(float(c["vy"]))
        length, speed = (float(c["w"]), vx) if vx >= vy else (float(c["h"]), vy)
        at = int(c["frame"]) - (max(2, round(0.5 * length / speed)) if speed > 0 else 2)
        if at >= 0 and all(abs(int(o["frame"]) - at) > clear for j, o in enumerate(ordered) if j != i):
            stops[at] = frames
    return stops


def stopped_truth(truth: dict[str, object], stops: dict[int, int]) -> dict[str, object]:
    """``truth`` for a copy with the picture held after the frames of ``stops``: every later crossing moved on by
    the frames held before it (an item crosses as the belt moves again)."""
    if not stops:
        return truth
    out = dict(truth)
    crossings = truth.get("crossings")
    if isinstance(crossings, list):
        out["crossings"] = [{**c, "frame": int(c["frame"]) + sum(n for f, n in stops.items() if f < int(c["frame"]))} for c in crossings]
    return out


def degraded_truth(truth: dict[str, object], frame_step: int, frames: int, fps: float) -> dict[str, object]:
    """``truth`` (a ``NAME.truth.json`` object) for a copy that keeps one frame in ``frame_step``: frame numbers
    divided, speeds (0-1 of the frame per frame) multiplied; coordinates are 0-1, so a resize keeps them."""
    out = dict(truth)
    out["frames"], out["fps"] = frames, fps
    crossings = truth.get("crossings")
    if isinstance(crossings, list):
        out["crossings"] = [
            {**c, "frame": int(c["frame"]) // frame_step, "vx": float(c["vx"]) * frame_step, "vy": float(c["vy"]) * frame_step}
            for c in crossings
        ]
    return out


def turned_truth(truth: dict[str, object], width: int, height: int, degrees: float) -> dict[str, object]:
    """``truth`` for the picture (``width`` x ``height`` px) turned by ``degrees``: its line, each crossing's
    centre and velocity turned, its size the upright box around the turned one (0-1 of the new canvas)."""
    if degrees == 0:
        return truth
    return _mapped_truth(truth, width, height, *picture_map(width, height, degrees), in_sight_only=False)


def turned_settings(text: str, width: int, height: int, degrees: float, fill: bool = False) -> str:
    """``NAME.yaml`` (count settings) for the picture turned by ``degrees`` (rolled within its frame with ``fill``:
    ``roll_matrix``): every line's and zone's points turned, lines cut to the frame."""
    import yaml

    from device.count_config import CountSettings

    settings = CountSettings.model_validate(yaml.safe_load(text) or {})
    turn, canvas = picture_map(width, height, degrees, fill)

    def point(x: float, y: float) -> tuple[float, float]:
        return turned_point(turn, width, height, canvas, x, y)

    def inside(x: float, y: float) -> list[float]:
        return [round(min(max(v, 0.0), 1.0), 5) for v in point(x, y)]

    data = settings.model_dump(mode="json", exclude_defaults=True)
    data.pop("line", None)
    for line in data.get("lines", []):
        x1, y1, x2, y2 = line["points"]
        cut = clipped_segment(point(x1, y1), point(x2, y2))
        line["points"] = [round(v, 5) for v in cut] if cut else [*inside(x1, y1), *inside(x2, y2)]
    for key in ("zones", "masks", "ignore"):
        for region in data.get(key, []):
            region["polygon"] = [inside(x, y) for x, y in region["polygon"]]
    return f"# count settings turned {degrees:g} degrees with the picture\n" + yaml.safe_dump(data, sort_keys=False)


def degrade_video(video: Path, out_dir: Path, degradation: Degradation, seed: int = 0) -> Path:
    """Write ``out_dir/NAME.mp4`` (MPEG-4 Part 2) degraded, with ``NAME.yaml`` and ``NAME.truth.json`` beside it
    when the original has them; returns the new video's path."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise FileNotFoundError(f"{video}: cannot open the video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 15.0
    truth = _truth_of(video)
    apply = degradation.apply
    if degradation.along_belt is not None:
        if not truth.get("crossings"):
            raise _no_belt_motion(degradation.name, video)
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        apply = degradation.along_belt(belt_step(truth, width, height))
    stops = belt_stops(truth, round(degradation.stop_seconds * fps))
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{video.stem}.mp4"
    writer: cv2.VideoWriter | None = None
    frames = 0
    index = 0
    size = (0, 0)  # the original picture's (width, height) px
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % degradation.frame_step == 0:
                size = (frame.shape[1], frame.shape[0])
                image = apply(frame, rng)
                if writer is None:
                    h, w = image.shape[:2]
                    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), fps / degradation.frame_step, (w, h))
                    if not writer.isOpened():
                        raise OSError(f"{target}: cannot write a video there")
                writer.write(image)
                frames += 1
                for _ in range(stops.get(index, 0)):  # the belt stands still: the same picture, the camera's noise anew
                    writer.write(apply(frame, rng))
                    frames += 1
            index += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if frames == 0:
        raise ValueError(f"{video}: no frame could be read")
    settings = video.with_suffix(".yaml")
    if settings.is_file() and degradation.degrees:
        (out_dir / settings.name).write_text(turned_settings(settings.read_text(), size[0], size[1], degradation.degrees, degradation.fill))
    elif settings.is_file():
        shutil.copyfile(settings, out_dir / settings.name)
    if truth:
        turn = rolled_truth if degradation.fill else turned_truth
        turned = turn(stopped_truth(truth, stops), size[0], size[1], degradation.degrees)
        new = degraded_truth(turned, degradation.frame_step, frames, fps / degradation.frame_step)
        truth_path(target).write_text(json.dumps(new, indent=1) + "\n")
    return target


def _truth_of(video: Path) -> dict[str, object]:
    """``video``'s ``NAME.truth.json`` object, or {} when it has none."""
    file = truth_path(video)
    return json.loads(file.read_text()) if file.is_file() else {}


def _no_belt_motion(name: str, video: Path) -> ValueError:
    return ValueError(f"{name} needs the belt's motion, from the item crossings of NAME.truth.json beside each video; {video} has none")


def degrade_videos(videos: Sequence[Path], out: Path, names: Sequence[str], progress: bool = False, seed: int = 0) -> dict[str, list[Path]]:
    """Every video degraded each way named, into ``out/<degradation>/``; returns the new videos per degradation."""
    from tqdm import tqdm

    unknown = [n for n in names if n not in DEGRADATIONS]
    if unknown:
        raise ValueError(f"unknown degradation {unknown[0]!r}: choose from {', '.join(DEGRADATIONS)}")
    needs_motion = [n for n in names if DEGRADATIONS[n].along_belt is not None]
    untold = [v for v in videos if not _truth_of(v).get("crossings")] if needs_motion else []
    if untold:
        raise _no_belt_motion(needs_motion[0], untold[0])
    jobs = [(name, video) for name in names for video in videos]
    written: dict[str, list[Path]] = {name: [] for name in names}
    for i, (name, video) in enumerate(tqdm(jobs, desc="degrading", unit="video", disable=not progress, leave=False)):
        written[name].append(degrade_video(video, out / name, DEGRADATIONS[name], seed=seed + i))
    return written
