"""Belt videos as a tilted camera sees them: a second renderer, unlike ``training.synth``, for checking that
counting does not depend on the look of the belts the detector was trained on.

``synth`` renders flat belts seen from straight above at 15 frames/s, items riding rigidly in straight
lines, cut out cleanly. This renderer draws the belt plane — a plain, ribbed or cleated belt with its side
frame and the floor beyond it — with items that spin and drift as they ride, some cut out loosely (a rim of
the photo's board left round them), then looks at it through a tilted camera (perspective: the far side
smaller and slower), a wide lens (barrel distortion, vignette, defocus) and mains-lit exposure that beats,
at 30 frames/s. Nothing it renders is trained on.

The truth file has the shape ``synth.render_video`` writes (``counts``, ``crossings`` with the item's image
box and velocity at its crossing, in 0-1 of the frame), so ``farz train count-eval`` pairs counts with items.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from training.camera import Camera
from training.synth import VideoSpec, compose, count_line, line_side, rotated, write_truth

Rng = np.random.Generator
BELT_TONES = ((28, 28, 30), (48, 50, 52), (70, 62, 55), (40, 62, 45), (160, 160, 155), (105, 80, 55))  # BGR: rubber, PVC, a light food belt
SURFACES = ("plain", "ribbed", "cleated")


@dataclass(frozen=True)
class CameraBeltSpec:
    """A video to render. Sizes in px of the output frame; ``speed`` is the belt's speed at the frame's centre
    in px/frame; ``tilt`` 0 is a camera straight above, 0.5 one whose far edge sees 1.5x the belt width of its
    near edge; ``distortion`` the lens' barrel term (0: none); ``halo`` the share of items cut out loosely;
    ``spin`` the largest turn of an item per frame, degrees; item sizes are fractions of the frame's short side
    at its centre; ``rate`` items per second (0: an empty belt); ``surface`` one of ``SURFACES``."""

    width: int = 640
    height: int = 480
    fps: int = 30
    seconds: float = 20.0
    direction: str = "down"
    speed: float = 5.0
    rate: float = 1.0
    tilt: float = 0.35
    distortion: float = 0.08
    halo: float = 0.4
    spin: float = 1.2
    surface: str = "cleated"
    min_scale: float = 0.16
    max_scale: float = 0.32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.direction not in ("down", "up", "left", "right"):
            raise ValueError(f"direction {self.direction!r}: one of down, up, left, right")
        if self.surface not in SURFACES:
            raise ValueError(f"surface {self.surface!r}: one of {', '.join(SURFACES)}")
        if not (0 <= self.tilt < 1 and 0 <= self.distortion < 0.5 and 0 < self.min_scale <= self.max_scale < 0.8):
            raise ValueError("need 0 <= tilt < 1, 0 <= distortion < 0.5 and 0 < min_scale <= max_scale < 0.8")


@dataclass
class _Rider:
    """An item on the belt plane: its BGRA image (unrotated), centre (u along the motion, v across) in canvas
    px, angle and spin in degrees (per frame), drift phase."""

    image: np.ndarray
    class_id: int
    u: float
    v: float
    speed: float
    angle: float
    spin: float
    drift: float
    phase: float
    crossed: bool = False
    seen: tuple[float, float] | None = None  # its centre in the picture, px, where it was last drawn

    def at(self, frame: int, along_x: bool) -> tuple[float, float]:
        """Its centre on the canvas (x, y), px, at ``frame``: ``u`` along the belt, ``v`` across, drifting."""
        v = self.v + self.drift * np.sin(self.phase + frame * 0.05)
        return (self.u, v) if along_x else (v, self.u)


def belt_texture(surface: str, across: int, length: int, rng: Rng) -> np.ndarray:
    """The belt (length x across x 3 float32, motion along axis 0, tileable in length)."""
    tone = np.asarray(BELT_TONES[int(rng.integers(len(BELT_TONES)))], np.float32) * rng.uniform(0.8, 1.2)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (length, across)).astype(np.float32), (0, 0), 1.2) * rng.uniform(4, 10)
    tex = tone[None, None, :] + grain[..., None]
    if surface == "ribbed":  # ribs along the belt
        period = int(rng.integers(6, 14))
        ribs = 1 + 0.12 * np.sin(np.arange(across, dtype=np.float32) * 2 * np.pi / period)
        tex *= ribs[None, :, None]
    elif surface == "cleated":  # bars across the belt, standing up: a lit face and a shadow behind
        period = int(rng.integers(length // 8, length // 4))
        bar = int(rng.integers(8, 20))
        lit = float(rng.uniform(1.3, 1.8))
        for y in range(0, length - bar - 8, period):
            tex[y : y + bar] = tex[y : y + bar] * lit + 20
            tex[y + bar : y + bar + 8] *= np.linspace(0.4, 0.95, 8, dtype=np.float32)[:, None, None]
    return tex


def frame_and_floor(canvas: np.ndarray, belt_lo: int, belt_hi: int, rng: Rng, along_x: bool) -> None:
    """Floor beyond the belt and a steel side frame with bolts, drawn on ``canvas`` outside [belt_lo, belt_hi)
    across the belt (canvas x when the belt runs vertically, y when ``along_x``)."""
    view = canvas.transpose(1, 0, 2) if along_x else canvas
    floor = np.asarray(rng.uniform(70, 130, 3), np.float32)
    view[:, :belt_lo] = floor
    view[:, belt_hi:] = floor
    rail = int(rng.integers(10, 22))
    grey = np.linspace(0.7, 1.2, rail, dtype=np.float32)[None, :, None] * float(rng.uniform(120, 190))
    left, right = min(rail, belt_lo), min(rail, view.shape[1] - belt_hi)
    if left:
        view[:, belt_lo - left : belt_lo] = grey[:, rail - left :]
    if right:
        view[:, belt_hi : belt_hi + right] = grey[:, ::-1][:, :right]


def loose_cut(rgba: np.ndarray, rng: Rng) -> np.ndarray:
    """The item with a rim of light board round it, as a hasty cut-out leaves (BGRA in, BGRA out)."""
    pad = max(3, int(max(rgba.shape[:2]) * rng.uniform(0.03, 0.08)))
    padded = cv2.copyMakeBorder(rgba, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
    alpha = padded[..., 3]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1, 2 * pad + 1))
    rim = cv2.dilate((alpha > 127).astype(np.uint8), kernel)
    rim = cv2.GaussianBlur(rim.astype(np.float32), (0, 0), pad / 3) > 0.5
    board = np.asarray(rng.uniform(175, 230), np.float32) * np.asarray(rng.uniform(0.95, 1.03, 3), np.float32)
    out = padded.copy()
    under = rim & (alpha < 255)
    a = alpha[under].astype(np.float32)[:, None] / 255
    out[..., :3][under] = (padded[..., :3][under] * a + board * (1 - a)).astype(np.uint8)
    out[..., 3][rim] = 255
    return out


def render_camera_video(
    cutouts: list[tuple[np.ndarray, int]], names: tuple[str, ...], spec: CameraBeltSpec, out_mp4: Path
) -> dict[str, object]:
    """Render ``spec`` with items drawn from ``cutouts`` (BGRA image, class id); write ``NAME.mp4``,
    ``NAME.truth.json`` and ``NAME.yaml`` (the count line across the frame's middle, the belt's motion ``in``);
    returns the truth. An item crosses when its centre, as the camera sees it, passes the line."""
    rng = np.random.default_rng(spec.seed)
    along_x = spec.direction in ("left", "right")
    sign = 1 if spec.direction in ("down", "right") else -1
    camera = Camera(spec.width, spec.height, spec.tilt, spec.distortion)
    cw, ch = camera.canvas_w, camera.canvas_h
    length, across = (cw, ch) if along_x else (ch, cw)
    # Items ride where the camera sees them at the line: within the near edge's view across the belt.
    near = camera.to_canvas(np.float32([[0, spec.height], [spec.width, spec.height]]))
    if along_x:
        lane = (0.12 * ch, 0.92 * ch)
    else:
        inset = (near[1, 0] - near[0, 0]) * rng.uniform(0.0, 0.12)
        lane = (float(near[0, 0] + inset), float(near[1, 0] - inset))
    belt_lo = int(max(0, lane[0] - (lane[1] - lane[0]) * rng.uniform(0.02, 0.25)))
    belt_hi = int(min(across, lane[1] + (lane[1] - lane[0]) * rng.uniform(0.02, 0.25)))
    strip = belt_texture(spec.surface, belt_hi - belt_lo, 3 * length, rng)
    scale_mid = (cw / spec.width + 1) / 2  # canvas px per image px at the frame's centre
    canvas_speed = spec.speed * scale_mid
    short = min(spec.width, spec.height) * scale_mid
    line = count_line(VideoSpec(direction=spec.direction))
    frames = int(spec.seconds * spec.fps)
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out_mp4), cv2.VideoWriter.fourcc(*"mp4v"), spec.fps, (spec.width, spec.height))
    if not writer.isOpened():
        raise OSError(f"cannot write video {out_mp4}")
    floor_canvas = np.zeros((ch, cw, 3), np.float32)
    frame_and_floor(floor_canvas, belt_lo, belt_hi, rng, along_x)
    vignette = _vignette(spec.width, spec.height, float(rng.uniform(0.15, 0.4)))
    gain, flicker_hz, blur = float(rng.uniform(0.75, 1.2)), float(rng.uniform(0.3, 2.0)), float(rng.uniform(0.4, 1.1))
    riders: list[_Rider] = []
    crossings: list[dict[str, object]] = []
    next_spawn, spawned = 0.0, 0
    last_spawn = frames - int(2 * length / canvas_speed)
    for f in range(frames):
        if spec.rate > 0 and next_spawn <= f < last_spawn:
            image, class_id = cutouts[int(rng.integers(len(cutouts)))]
            side = rng.uniform(spec.min_scale, spec.max_scale) * short
            s = side / max(image.shape[:2])
            item = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            if rng.random() < spec.halo:
                item = loose_cut(item, rng)
            item[..., :3] = np.clip(item[..., :3].astype(np.float32) * rng.uniform(0.8, 1.15), 0, 255).astype(np.uint8)
            reach = 0.75 * max(item.shape[:2])
            v = float(rng.uniform(lane[0] + reach, max(lane[0] + reach + 1, lane[1] - reach)))
            u = -reach if sign > 0 else length + reach
            riders.append(
                _Rider(
                    item,
                    class_id,
                    u,
                    v,
                    canvas_speed * rng.uniform(0.93, 1.07),
                    float(rng.uniform(0, 360)),
                    float(rng.uniform(-spec.spin, spec.spin)),
                    float(rng.uniform(0, 0.15) * reach),
                    float(rng.uniform(0, 6.3)),
                )
            )
            spawned += 1
            next_spawn = f + rng.exponential(spec.fps / spec.rate) + reach / canvas_speed
        offset = int(f * canvas_speed) % strip.shape[0]
        belt = np.roll(strip, offset * sign, axis=0)[:length]
        canvas = floor_canvas.copy()
        if along_x:
            canvas[belt_lo:belt_hi, :] = belt.transpose(1, 0, 2)
        else:
            canvas[:, belt_lo:belt_hi] = belt
        placed = []
        for r in riders:
            img = rotated(r.image, r.angle)
            x, y = r.at(f, along_x)
            compose(canvas, img, x, y, shadow=0.35)
            placed.append((r, img, x, y))
        picture = camera.render(canvas)
        t = f / spec.fps
        light = gain * (1 + 0.05 * np.sin(2 * np.pi * flicker_hz * t)) * vignette
        picture = cv2.GaussianBlur(picture, (0, 0), blur) * light[..., None]
        picture += rng.normal(0, 3.0, picture.shape).astype(np.float32)
        writer.write(np.clip(picture, 0, 255).astype(np.uint8))
        for r, img, x, y in placed:
            before = r.seen if r.seen is not None else _centre(camera, x, y)
            r.u += sign * r.speed
            r.angle += r.spin
            nx, ny = r.at(f + 1, along_x)
            after = r.seen = _centre(camera, nx, ny)
            w_img, h_img = spec.width, spec.height
            p0 = (before[0] / w_img, before[1] / h_img)
            p1 = (after[0] / w_img, after[1] / h_img)
            if not r.crossed and line_side(line, p0) * line_side(line, p1) < 0:
                r.crossed = True
                direction = "in" if line_side(line, p1) > 0 else "out"
                bw, bh = _image_box(camera, img, nx, ny)
                crossings.append(
                    {
                        "frame": f + 1,
                        "class": names[r.class_id],
                        "direction": direction,
                        "x": round(p1[0], 4),
                        "y": round(p1[1], 4),
                        "w": round(bw / w_img, 4),
                        "h": round(bh / h_img, 4),
                        "vx": round(p1[0] - p0[0], 5),
                        "vy": round(p1[1] - p0[1], 5),
                    }
                )
        riders = [r for r in riders if -2 * max(r.image.shape[:2]) < r.u < length + 2 * max(r.image.shape[:2])]
    writer.release()
    return write_truth(out_mp4, names, crossings, frames, spec.fps, spawned, line, {"renderer": "camera_belts", **asdict(spec)})


def _vignette(width: int, height: int, strength: float) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xs - width / 2) ** 2 + (ys - height / 2) ** 2) / ((width / 2) ** 2 + (height / 2) ** 2)
    return np.asarray(1 - strength * r2, np.float32)


def _centre(camera: Camera, x: float, y: float) -> tuple[float, float]:
    p = camera.to_image(np.float32([[x, y]]))[0]
    return float(p[0]), float(p[1])


def _image_box(camera: Camera, image: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """Width and height (px) of the box round the item's opaque pixels as the camera sees them."""
    ys, xs = np.nonzero(image[..., 3] > 127)
    if len(xs) == 0:
        return 0.0, 0.0
    h, w = image.shape[:2]
    corners = np.float32([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()]])
    corners += np.float32([x - w / 2, y - h / 2])
    seen = camera.to_image(corners)
    return float(np.ptp(seen[:, 0])), float(np.ptp(seen[:, 1]))
