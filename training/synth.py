"""Conveyor scene generator: cut-outs composed onto procedural belts, with exact labels and truth.

Two products come from the same renderer:
- training images with YOLO labels (boxes of the visible part of every item), and
- belt videos with ``NAME.truth.json`` (true counts per class and direction across a count line) and
  ``NAME.yaml`` (the line), the shape ``farz count`` reads.

Variation covered: belt colour and texture, seams, side rails, direction and speed, item rotation and
scale, overlap and occlusion, drop shadows, motion blur, global and gradient lighting, colour cast,
sensor noise and JPEG artefacts; on request, loaded belts (items in touching, overlapping piles, with
rollers, joint clips and stains); on request, belts as a tilted wide-angle camera sees them (perspective,
barrel distortion, the belt's side frame and the floor beyond it, cleated and ribbed belts, light belts).
Not covered (see the model card): dirt and wet items, items other than TrashNet's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from training.camera import Camera

BELT_COLOURS = ((38, 38, 40), (22, 22, 24), (45, 70, 50), (80, 55, 40), (95, 95, 92), (60, 45, 35), (30, 40, 75))
BOARD_COLOURS = ((205, 205, 200), (175, 178, 180), (225, 222, 215), (150, 150, 145))  # light boards and chutes
EMPTY_CAMERA_BELTS = 0.1  # camera scenes with no item on the belt: only cleats, stains, frame and floor
LIGHT_BELTS = ((150, 150, 146), (180, 182, 178), (120, 132, 138))  # grey and white PVC belts (camera scenes)
MIN_VISIBLE = 0.35  # the fraction of an item that must be in sight for it to be labelled
Rng = np.random.Generator


@dataclass(frozen=True)
class Cutout:
    """One item image with alpha (H, W, 4 uint8, BGRA) and its taxonomy class id."""

    rgba: np.ndarray
    class_id: int
    name: str


CUTOUT_SUFFIXES = (".png", ".webp")  # PNG as cut out; WebP in a packed copy (`farz datasets pack`)


def load_cutouts(folder: Path, names: tuple[str, ...], split: str) -> list[Cutout]:
    """Cut-outs of ``folder/split/<class>/*.png`` (or ``*.webp``) for the given class names."""
    items: list[Cutout] = []
    for class_id, name in enumerate(names):
        for path in sorted(p for p in (folder / split / name).glob("*") if p.suffix in CUTOUT_SUFFIXES):
            rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if rgba is not None and rgba.ndim == 3 and rgba.shape[2] == 4:
                items.append(Cutout(rgba, class_id, path.stem))
    return items


@dataclass(frozen=True)
class BeltStyle:
    """How a belt looks; drawn once per scene, scrolled along the belt for video frames."""

    colour: tuple[int, int, int]
    grain: float
    seam_period: int
    rail_width: float
    rail_colour: tuple[int, int, int]
    gain: float
    gradient: float
    cast: tuple[float, float, float]
    noise: float
    jpeg_quality: int
    seed: int

    @staticmethod
    def random(rng: Rng, colours: tuple[tuple[int, int, int], ...] = BELT_COLOURS) -> BeltStyle:
        base = np.array(colours[rng.integers(len(colours))], float) * rng.uniform(0.7, 1.3)
        rail = int(rng.uniform(110, 200))
        return BeltStyle(
            colour=tuple(int(c) for c in np.clip(base, 0, 255)),  # type: ignore[arg-type]
            grain=float(rng.uniform(3, 14)),
            seam_period=int(rng.integers(90, 400)),
            rail_width=float(rng.uniform(0.0, 0.09)),
            rail_colour=(rail, rail, int(rail * rng.uniform(0.9, 1.05))),
            gain=float(rng.uniform(0.6, 1.35)),
            gradient=float(rng.uniform(-0.35, 0.35)),
            cast=tuple(float(v) for v in rng.uniform(0.88, 1.12, 3)),  # type: ignore[arg-type]
            noise=float(rng.uniform(0, 9)),
            jpeg_quality=int(rng.integers(35, 96)),
            seed=int(rng.integers(2**31)),
        )


def belt_strip(style: BeltStyle, width: int, length: int) -> np.ndarray:
    """A belt texture (length x width x 3, float32) with motion along axis 0, tileable in length."""
    rng = np.random.default_rng(style.seed)
    coarse = rng.normal(0, 1, (max(2, length // 24), max(2, width // 24))).astype(np.float32)
    coarse = cv2.resize(coarse, (width, length), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 1, (length, width)).astype(np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), 0.8)
    tex = np.asarray(style.colour, np.float32)[None, None, :] + (coarse * 0.6 + fine * 0.4)[..., None] * style.grain
    for y in range(0, length, style.seam_period):
        tex[y : y + 3] *= 0.7
    stains = rng.integers(0, 6)
    for _ in range(stains):
        cy, cx = int(rng.integers(length)), int(rng.integers(width))
        cv2.circle(tex, (cx, cy), int(rng.integers(5, 30)), tuple(float(c) * 0.8 for c in style.colour), -1)
    return tex


def compose(frame: np.ndarray, item: np.ndarray, cx: float, cy: float, shadow: float = 0.45) -> np.ndarray:
    """Paste a BGRA ``item`` centred at (cx, cy) px onto float ``frame`` in place, with a soft shadow.

    Returns the item's alpha in frame coordinates (H, W float32 in 0..1).
    """
    h, w = frame.shape[:2]
    ih, iw = item.shape[:2]
    x0, y0 = round(cx - iw / 2), round(cy - ih / 2)
    alpha_full = np.zeros((h, w), np.float32)
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + iw, w), min(y0 + ih, h)
    if fx0 >= fx1 or fy0 >= fy1:
        return alpha_full
    crop = item[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    alpha = crop[..., 3].astype(np.float32) / 255
    alpha_full[fy0:fy1, fx0:fx1] = alpha
    if shadow > 0:
        off = max(2, int(0.06 * max(ih, iw)))
        sh = np.zeros((h, w), np.float32)
        sh[min(fy0 + off, h) : min(fy1 + off, h), min(fx0 + off, w) : min(fx1 + off, w)] = alpha[
            : max(0, min(fy1 + off, h) - fy0 - off), : max(0, min(fx1 + off, w) - fx0 - off)
        ]
        sh = cv2.GaussianBlur(sh, (0, 0), off * 0.6)
        frame *= (1 - shadow * sh)[..., None]
    region = frame[fy0:fy1, fx0:fx1]
    region[:] = crop[..., :3].astype(np.float32) * alpha[..., None] + region * (1 - alpha[..., None])
    return alpha_full


def transform_item(cutout: Cutout, side_px: float, angle: float, rng: Rng) -> np.ndarray:
    """Scale the cut-out so its longer side is ``side_px``, rotate by ``angle`` degrees, jitter colour."""
    rgba = cutout.rgba
    s = side_px / max(rgba.shape[:2])
    rgba = cv2.resize(rgba, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        rgba = rgba[:, ::-1]
    out = rotated(np.ascontiguousarray(rgba), angle)
    bgr = out[..., :3].astype(np.float32) * rng.uniform(0.75, 1.2) + rng.uniform(-12, 12, 3)
    out[..., :3] = np.clip(bgr, 0, 255).astype(np.uint8)
    return out


def in_two_tones(item: np.ndarray, rng: Rng) -> np.ndarray:
    """An item (H x W x 4 uint8, alpha last) in two tones: the part on one side of a random line through its centre
    made darker or lighter and tinted, its outline kept, as a folded carton, a label or a wet patch looks. A scene
    labels it as one item all the same, so a detector learns to go by outline, not by a tone edge inside it."""
    h, w = item.shape[:2]
    ys, xs = np.nonzero(item[..., 3] > 127)
    if len(xs) < 16:
        return item
    theta = float(rng.uniform(0, np.pi))
    offset = float(rng.uniform(-0.25, 0.25)) * max(np.ptp(xs), np.ptp(ys))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side = (xx - xs.mean()) * np.cos(theta) + (yy - ys.mean()) * np.sin(theta) - offset
    weight = np.clip(side / max(1.0, float(rng.uniform(0.5, 3.0))) + 0.5, 0, 1)[..., None]
    gain = float(rng.uniform(0.5, 0.8)) if rng.random() < 0.5 else float(rng.uniform(1.25, 1.7))
    toned = item[..., :3].astype(np.float32) * gain + rng.uniform(-25, 25, 3).astype(np.float32)
    out = item.copy()
    out[..., :3] = np.clip(item[..., :3] * (1 - weight) + toned * weight, 0, 255).astype(np.uint8)
    return out


def some_in_two_tones(item: np.ndarray, rng: Rng, share: float) -> np.ndarray:
    """``item`` in two tones with probability ``share`` (``in_two_tones``), else as it is; 0 draws no random number."""
    return in_two_tones(item, rng) if share > 0 and rng.random() < share else item


def rotated(rgba: np.ndarray, angle: float) -> np.ndarray:
    """``rgba`` (H, W, C) turned by ``angle`` degrees counter-clockwise on a canvas that holds it whole."""
    h, w = rgba.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos) + 2, int(h * cos + w * sin) + 2
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(rgba, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))


# Tones of flat items (BGR): white, light grey, grey, dark grey, black, kraft, dark kraft; one in five gets a random colour.
FLAT_TONES = ((235, 235, 235), (205, 205, 205), (150, 150, 150), (70, 70, 70), (25, 25, 25), (90, 140, 185), (60, 100, 140))


def flat_item(side_px: float, rng: Rng) -> np.ndarray:
    """A flat, straight-edged item (BGRA, opaque): a sheet, a flattened carton or a tray, ``side_px`` long and 0.4-1 of
    that wide, of a plain tone (``FLAT_TONES`` or a random colour) shaded across, sometimes folded, rimmed or printed.
    Belts carry these square to their motion as often as not, and square achromatic edges are otherwise only machinery."""
    w = max(8, round(side_px))
    h = max(8, round(side_px * rng.uniform(0.4, 1.0)))
    tone = np.asarray(FLAT_TONES[int(rng.integers(len(FLAT_TONES)))] if rng.random() < 0.8 else rng.uniform(20, 235, 3), np.float32)
    image = np.empty((h, w, 3), np.float32)
    image[:] = tone
    image += np.linspace(-1, 1, w, dtype=np.float32)[None, :, None] * float(rng.uniform(0, 15))
    image += rng.normal(0, 2.5, (h, w, 1)).astype(np.float32)
    if rng.random() < 0.3:  # a fold across it
        image[:, int(rng.uniform(0.2, 0.8) * w) :] *= float(rng.uniform(0.8, 0.95))
    if rng.random() < 0.3:  # a tray's rim
        rim = tuple(float(v) for v in tone * rng.uniform(0.7, 1.2))
        cv2.rectangle(image, (0, 0), (w - 1, h - 1), rim, int(rng.integers(2, 6)))
    for _ in range(int(rng.integers(0, 6)) if rng.random() < 0.4 else 0):  # print: lines, blocks
        x0, y0 = int(rng.integers(w)), int(rng.integers(h))
        ink = tuple(float(v) for v in rng.uniform(0, 200, 3))
        cv2.rectangle(image, (x0, y0), (x0 + int(rng.integers(3, max(4, w // 2))), y0 + int(rng.integers(2, max(3, h // 6)))), ink, -1)
    alpha = np.full((h, w, 1), 255, np.uint8)
    return np.concatenate([np.clip(image, 0, 255).astype(np.uint8), alpha], axis=2)


def square_angle(rng: Rng) -> float:
    """Degrees: square to the picture (a quarter turn), within 2°."""
    return float(int(rng.integers(4)) * 90 + rng.uniform(-2, 2))


def place_item(cutout: Cutout, side_px: float, rng: Rng, flat: float = 0.0, square: float = 0.0) -> tuple[np.ndarray, int]:
    """The picture (BGRA) of one item ``side_px`` long and its class id: the cut-out turned at random, or as photographed
    (square, ``square_angle``) for a share ``square`` of them; or, for a share ``flat``, a ``flat_item`` in its place,
    square half the time, under the class id of the cut-out it stands in for (an item, for a one-class detector:
    its material is not what it is drawn to teach). With both 0 it draws only what ``transform_item`` at a random
    angle draws."""
    if flat > 0 and rng.random() < flat:
        angle = square_angle(rng) if rng.random() < 0.5 else float(rng.uniform(0, 360))
        return rotated(flat_item(side_px, rng), angle), cutout.class_id
    angle = square_angle(rng) if square > 0 and rng.random() < square else float(rng.uniform(0, 360))
    return transform_item(cutout, side_px, angle, rng), cutout.class_id


@dataclass(frozen=True)
class ItemLooks:
    """How a scene's items are drawn: shares ``two_tone`` in two tones (``in_two_tones``), ``flat`` flat straight-edged
    items and ``square`` lying as photographed (``place_item``); at 0 none draws a random number."""

    two_tone: float = 0.0
    flat: float = 0.0
    square: float = 0.0

    def draw(self, cutout: Cutout, side_px: float, rng: Rng) -> tuple[np.ndarray, int]:
        """One item's picture (BGRA), ``side_px`` long, and its class id."""
        item, class_id = place_item(cutout, side_px, rng, self.flat, self.square)
        return some_in_two_tones(item, rng, self.two_tone), class_id


def finish(frame: np.ndarray, style: BeltStyle, rng: Rng, blur_px: int, blur_axis: int) -> np.ndarray:
    """Lighting, motion blur along ``blur_axis`` (0 = vertical, 1 = horizontal), noise; returns uint8."""
    h, w = frame.shape[:2]
    ramp = np.linspace(1 - style.gradient, 1 + style.gradient, w if rng.random() < 0.5 else h, dtype=np.float32)
    light = ramp[None, :] if ramp.size == w else ramp[:, None]
    frame = frame * (style.gain * light)[..., None] * np.asarray(style.cast, np.float32)
    if blur_px > 1:
        k = np.zeros((blur_px, blur_px), np.float32)
        if blur_axis == 0:
            k[:, blur_px // 2] = 1 / blur_px
        else:
            k[blur_px // 2, :] = 1 / blur_px
        frame = cv2.filter2D(frame, -1, k)
    if style.noise > 0:
        frame = frame + rng.normal(0, style.noise, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG at ``quality`` to add its artefacts."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else image


def draw_rails(frame: np.ndarray, style: BeltStyle, axis: int) -> None:
    """Side rails parallel to the belt's motion (``axis`` 0: belt moves vertically)."""
    if style.rail_width <= 0:
        return
    across = frame.shape[1] if axis == 0 else frame.shape[0]
    rw = max(2, int(style.rail_width * across))
    shade = np.linspace(0.7, 1.15, rw, dtype=np.float32)[:, None] * np.asarray(style.rail_colour, np.float32)
    if axis == 0:
        frame[:, :rw] = shade[None, :, :]
        frame[:, -rw:] = shade[None, ::-1, :]
    else:
        frame[:rw, :] = shade[:, None, :]
        frame[-rw:, :] = shade[::-1, None, :]


@dataclass
class SceneLabels:
    """YOLO labels of one rendered image: class ids and normalised (cx, cy, w, h) boxes."""

    class_ids: list[int] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)

    def to_text(self) -> str:
        return "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, (x, y, w, h) in zip(self.class_ids, self.boxes, strict=True))


def visible_labels(alphas: list[np.ndarray], class_ids: list[int], min_visible: float = MIN_VISIBLE) -> SceneLabels:
    """Boxes of each item's visible part, items composed in list order (later ones on top)."""
    labels = SceneLabels()
    if not alphas:
        return labels
    h, w = alphas[0].shape
    cover = np.zeros((h, w), np.float32)
    visible: list[np.ndarray] = []
    for a in reversed(alphas):
        visible.append(a * (1 - cover))
        cover = np.maximum(cover, a)
    visible.reverse()
    for vis, full, cid in zip(visible, alphas, class_ids, strict=True):
        area = float(full.sum())
        if area < 30:
            continue
        m = vis > 0.5
        if float(vis.sum()) < min_visible * area or m.sum() < 30:
            continue
        labels.class_ids.append(cid)
        labels.boxes.append(mask_box(m))
    return labels


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Normalised YOLO box (cx, cy, w, h) around the non-zero pixels of a (H, W) mask that has some."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h


def draw_machinery(frame: np.ndarray, rng: Rng) -> None:
    """What a loaded belt's camera sees besides items: a roller where the belt turns (a shaded band across the
    belt at one end), belt-joint clips (a row of bright studs across it), and stains of other colours
    (oil, paper pulp, wet patches). ``frame`` (H x W x 3 float32, belt moving along axis 0) is drawn on."""
    h, w = frame.shape[:2]
    if rng.random() < 0.5:
        band = int(h * rng.uniform(0.06, 0.16))
        shade = np.sin(np.linspace(0.15, np.pi - 0.15, band, dtype=np.float32))[:, None, None] * rng.uniform(90, 190)
        tone = np.asarray(rng.uniform(0.85, 1.1, 3), np.float32)
        if rng.random() < 0.5:
            frame[:band] = shade * tone
        else:
            frame[h - band :] = shade[::-1] * tone
    for _ in range(int(rng.integers(0, 3))):
        y = int(rng.integers(0, h))
        stud = int(rng.integers(3, 7))
        for x in range(int(rng.integers(0, 12)), w, int(rng.integers(14, 30))):
            cv2.rectangle(frame, (x, y), (x + stud, y + stud), (float(rng.uniform(150, 230)),) * 3, -1)
    for _ in range(int(rng.integers(1, 6))):
        colour = tuple(float(v) for v in rng.uniform(20, 140, 3))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(6, 45)), int(rng.integers(4, 25)))
        overlay = frame.copy()
        cv2.ellipse(overlay, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        alpha = float(rng.uniform(0.25, 0.7))
        frame[:] = overlay * alpha + frame * (1 - alpha)


def pile_positions(n: int, w: int, h: int, side: float, rng: Rng) -> list[tuple[float, float]]:
    """Centres (px) of ``n`` items in 1-4 piles: each item lies 0.4-1.1 of an item's size from its pile's
    centre, so neighbours touch and overlap as on a loaded belt."""
    piles = [(float(rng.uniform(0.15, 0.85) * w), float(rng.uniform(0.15, 0.85) * h)) for _ in range(int(rng.integers(1, 5)))]
    out = []
    for _ in range(n):
        cx, cy = piles[int(rng.integers(len(piles)))]
        angle, distance = rng.uniform(0, 2 * np.pi), side * rng.uniform(0.4, 1.1)
        out.append((cx + distance * float(np.cos(angle)), cy + distance * float(np.sin(angle))))
    return out


def poor_camera_look(image: np.ndarray, rng: Rng) -> np.ndarray:
    """``image`` (H x W x 3 uint8) as a poorer camera or a harder hall would give it, one to five ways at once
    (each with its own chance): lamps of another colour (each channel 0.7-1.3 of the light), a dim hall
    (0.2-0.7 of the light) or an over-exposed belt (1.3-1.8 and up to 30 grey levels more), a lens out of focus
    (Gaussian blur of 0.8-3.5 px), sensor noise (4-20 grey levels), a stream compressed hard (JPEG quality
    8-35). Pixels only: the labels stay."""
    frame = image.astype(np.float32)
    ways = rng.random(5) < (0.4, 0.5, 0.3, 0.5, 0.3)
    if not ways.any():
        ways[3] = True
    if ways[0]:
        frame *= rng.uniform(0.7, 1.3, 3).astype(np.float32)
    if ways[1]:
        frame = frame * rng.uniform(0.2, 0.7) if rng.random() < 0.7 else frame * rng.uniform(1.3, 1.8) + rng.uniform(0, 30)
    if ways[2]:
        frame = cv2.GaussianBlur(frame, (0, 0), float(rng.uniform(0.8, 3.5)))
    if ways[3]:
        frame += rng.normal(0, rng.uniform(4, 20), frame.shape).astype(np.float32)
    out = np.clip(frame, 0, 255).astype(np.uint8)
    return jpeg(out, int(rng.integers(8, 36))) if ways[4] else out


def render_training_image(
    cutouts: list[Cutout],
    rng: Rng,
    size: tuple[int, int] = (480, 360),
    closeup: float = 0.0,
    crowded: float = 0.0,
    min_visible: float = MIN_VISIBLE,
    camera: float = 0.0,
    two_tone: float = 0.0,
    poor_camera: float = 0.0,
    flat: float = 0.0,
    square: float = 0.0,
) -> tuple[np.ndarray, SceneLabels]:
    """One still belt scene (H x W x 3 uint8, size = (W, H)) and its YOLO labels.

    A belt scene holds 1-9 items, each 14-50 % of the short side long. With probability ``closeup`` the
    scene is a close-up instead (a camera mounted near the belt, a drop-off board): 1-3 items, 45-95 % of
    the short side, on a belt or, half the time, a light board. With probability ``crowded`` (of the scenes
    that are not close-ups) it is a loaded belt: 6-16 items of 14-35 % lying in piles (touching, overlapping:
    each labelled by its visible part, a pile as separate items), with rollers, joint clips and stains
    (``draw_machinery``). With probability ``camera`` (of the scenes that are not close-ups) the belt is seen
    by a tilted wide-angle camera instead (``camera_scene``; ``crowded`` of those loaded). With ``crowded`` and
    ``camera`` 0 a seed renders exactly the scenes it rendered before. An item is labelled when at least
    ``min_visible`` of it is in sight; one more covered is left unlabelled. A share ``two_tone`` of the items
    is drawn in two tones (``in_two_tones``), and a share ``poor_camera`` of the scenes as a poorer camera gives
    them (``poor_camera_look``); a share ``flat`` of the items are flat straight-edged ones and a share ``square``
    of the others lie as photographed (``place_item``); with 0 no random number is drawn for any of these.
    """
    image, labels = _scene(cutouts, rng, size, closeup, crowded, min_visible, camera, ItemLooks(two_tone, flat, square))
    if poor_camera > 0 and rng.random() < poor_camera:
        image = poor_camera_look(image, rng)
    return image, labels


def _scene(
    cutouts: list[Cutout],
    rng: Rng,
    size: tuple[int, int],
    closeup: float,
    crowded: float,
    min_visible: float,
    camera: float,
    looks: ItemLooks,
) -> tuple[np.ndarray, SceneLabels]:
    w, h = size
    near = closeup > 0 and rng.random() < closeup
    if not near and camera > 0 and rng.random() < camera:
        return camera_scene(cutouts, rng, w, h, min_visible, loaded=rng.random() < crowded, looks=looks)
    if not near and crowded > 0 and rng.random() < crowded:
        return _crowded_scene(cutouts, rng, w, h, min_visible, looks)
    style = BeltStyle.random(rng, BOARD_COLOURS if near and rng.random() < 0.5 else BELT_COLOURS)
    frame = belt_strip(style, w, h)
    draw_rails(frame, style, axis=0)
    n = int(rng.integers(1, 4 if near else 10))
    sides = (0.45, 0.95) if near else (0.14, 0.5)
    alphas: list[np.ndarray] = []
    ids: list[int] = []
    for _ in range(n):
        cut = cutouts[int(rng.integers(len(cutouts)))]
        item, class_id = looks.draw(cut, rng.uniform(*sides) * min(w, h), rng)
        spread = (0.15, 0.85) if near else (-0.05, 1.05)  # a close-up's items are mostly in frame
        cx, cy = rng.uniform(*spread) * w, rng.uniform(*spread) * h
        alphas.append(compose(frame, item, cx, cy, shadow=float(rng.uniform(0.1, 0.6))))
        ids.append(class_id)
    labels = visible_labels(alphas, ids, min_visible)
    image = finish(frame, style, rng, blur_px=int(rng.choice([1, 1, 3, 5, 7, 9])), blur_axis=0)
    image = jpeg(image, style.jpeg_quality)
    return quarter_turns(image, labels, int(rng.integers(4)))


def quarter_turns(image: np.ndarray, labels: SceneLabels, k: int) -> tuple[np.ndarray, SceneLabels]:
    """``image`` turned ``k`` quarter turns counter-clockwise, with its labels turned the same way."""
    if not k:
        return image, labels
    for i, (x, y, bw, bh) in enumerate(labels.boxes):
        for _ in range(k):  # np.rot90 turns counter-clockwise: (x, y) -> (y, 1 - x)
            x, y, bw, bh = y, 1 - x, bh, bw
        labels.boxes[i] = (x, y, bw, bh)
    return np.ascontiguousarray(np.rot90(image, k)), labels


def draw_cleats(belt: np.ndarray, rng: Rng) -> None:
    """Cleats or ribs on a belt (length x across x 3 float32, motion along axis 0), drawn in place: bars across
    the belt (lighter or darker, single or in pairs, each with a shadow on its downstream side) or ribs along it."""
    length, across = belt.shape[:2]
    if rng.random() < 0.3:
        period = float(rng.uniform(5, 16))
        belt *= (1 + rng.uniform(0.06, 0.18) * np.sin(np.arange(across, dtype=np.float32) * 2 * np.pi / period))[None, :, None]
        return
    period = int(rng.integers(max(20, length // 10), max(21, length // 2)))
    thick = int(rng.integers(3, 18))
    tone = float(rng.uniform(1.25, 1.9)) if rng.random() < 0.7 else float(rng.uniform(0.4, 0.7))
    pair = int(rng.integers(thick + 3, thick + 25)) if rng.random() < 0.3 else 0
    start = int(rng.integers(period))
    for y in range(start, length, period):
        for y0 in (y, y + pair) if pair else (y,):
            belt[y0 : y0 + thick] = belt[y0 : y0 + thick] * tone + (15 if tone > 1 else 0)
            belt[y0 + thick : y0 + thick + max(2, thick // 2)] *= 0.6


def draw_stains(belt: np.ndarray, rng: Rng) -> None:
    """0-5 stains on a belt (length x across x 3 float32), drawn in place: round or oval blots with soft edges,
    darker than the belt (oil, water) or of another colour (pulp, food), 3-22 % of the belt's width across."""
    length, across = belt.shape[:2]
    for _ in range(int(rng.integers(0, 6))):
        radius = float(rng.uniform(0.03, 0.22)) * across / 2
        axes = (max(2, int(radius)), max(2, int(radius * rng.uniform(0.5, 1.0))))
        mask = np.zeros((length, across), np.float32)
        centre = (int(rng.integers(0, across)), int(rng.integers(0, length)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, radius * float(rng.uniform(0.05, 0.4))))[..., None]
        if rng.random() < 0.7:
            tint = belt * float(rng.uniform(0.3, 0.8))
        else:
            tint = np.broadcast_to(np.asarray(rng.uniform(20, 160, 3), np.float32), belt.shape)
        belt[:] = belt + (tint - belt) * mask * float(rng.uniform(0.4, 1.0))


def camera_scene(
    cutouts: list[Cutout], rng: Rng, w: int, h: int, min_visible: float, loaded: bool, looks: ItemLooks = ItemLooks()
) -> tuple[np.ndarray, SceneLabels]:
    """A belt scene as a camera tilted by up to 0.55 (the far side wider, its items smaller) with a wide lens
    half the time sees it: the belt (any colour, light belts too; cleats or ribs on half of them, stains on
    most) between its steel side frame and the floor, which show where the far side sees past the belt's edges;
    1-9 items of 14-45 % of the short side anywhere on the belt (none on one belt in ten), or a loaded belt
    (``loaded``: piles, rollers, stains); the far side at any edge of the picture. Labels are the boxes of the
    items' warped visible masks."""
    cam = Camera(w, h, float(rng.uniform(0.1, 0.55)), float(rng.uniform(0.03, 0.15)) if rng.random() < 0.5 else 0.0)
    cw, ch = cam.canvas_w, cam.canvas_h
    near_lo, near_hi = (cw - w) / 2, (cw + w) / 2
    lo = int(np.clip(near_lo + w * rng.uniform(-0.3, 0.12), 0, cw / 2 - 8))
    hi = int(np.clip(near_hi - w * rng.uniform(-0.3, 0.12), cw / 2 + 8, cw))
    style = BeltStyle.random(rng, BELT_COLOURS + LIGHT_BELTS)
    belt = belt_strip(style, hi - lo, ch)
    if rng.random() < 0.5:
        draw_cleats(belt, rng)
    draw_stains(belt, rng)
    if loaded:
        draw_machinery(belt, rng)
    canvas = np.empty((ch, cw, 3), np.float32)
    canvas[:] = np.asarray(rng.uniform(50, 150, 3), np.float32)
    canvas += cv2.GaussianBlur(rng.normal(0, 1, (ch, cw)).astype(np.float32), (0, 0), 2.0)[..., None] * float(rng.uniform(2, 10))
    canvas[:, lo:hi] = belt
    rail = int(rng.integers(6, 26))
    steel = np.linspace(0.65, 1.2, rail, dtype=np.float32)[None, :, None] * float(rng.uniform(100, 200))
    canvas[:, max(0, lo - rail) : lo] = steel[:, rail - min(rail, lo) :]
    canvas[:, hi : hi + rail] = steel[:, ::-1][:, : min(rail, cw - hi)]
    scale = (cw / w + 1) / 2 * min(w, h)  # canvas px per image short side at the picture's centre
    if loaded:
        n, side = int(rng.integers(6, 17)), float(rng.uniform(0.14, 0.35) * scale)
        spots = [(lo + x * (hi - lo) / w, y * ch / h) for x, y in pile_positions(n, w, h, side, rng)]
        sizes = [side * float(rng.uniform(0.7, 1.3)) for _ in spots]
    else:
        n = 0 if rng.random() < EMPTY_CAMERA_BELTS else int(rng.integers(1, 10))
        spots = [(float(rng.uniform(lo, hi)), float(rng.uniform(-0.05, 1.05) * ch)) for _ in range(n)]
        sizes = [float(rng.uniform(0.14, 0.45)) * scale for _ in spots]
    alphas: list[np.ndarray] = []
    ids: list[int] = []
    for (cx, cy), side_px in zip(spots, sizes, strict=True):
        cut = cutouts[int(rng.integers(len(cutouts)))]
        item, class_id = looks.draw(cut, side_px, rng)
        alphas.append(cam.render(compose(canvas, item, cx, cy, shadow=float(rng.uniform(0.1, 0.6))), outside=0.0))
        ids.append(class_id)
    labels = visible_labels(alphas, ids, min_visible)
    image = jpeg(finish(cam.render(canvas), style, rng, blur_px=int(rng.choice([1, 1, 3, 5])), blur_axis=0), style.jpeg_quality)
    return quarter_turns(image, labels, int(rng.integers(4)))


def _crowded_scene(
    cutouts: list[Cutout], rng: Rng, w: int, h: int, min_visible: float, looks: ItemLooks = ItemLooks()
) -> tuple[np.ndarray, SceneLabels]:
    style = BeltStyle.random(rng, BELT_COLOURS)
    frame = belt_strip(style, w, h)
    draw_machinery(frame, rng)
    draw_rails(frame, style, axis=0)
    n = int(rng.integers(6, 17))
    side = float(rng.uniform(0.14, 0.35) * min(w, h))
    alphas: list[np.ndarray] = []
    ids: list[int] = []
    for cx, cy in pile_positions(n, w, h, side, rng):
        cut = cutouts[int(rng.integers(len(cutouts)))]
        item, class_id = looks.draw(cut, side * rng.uniform(0.7, 1.3), rng)
        alphas.append(compose(frame, item, cx, cy, shadow=float(rng.uniform(0.1, 0.6))))
        ids.append(class_id)
    labels = visible_labels(alphas, ids, min_visible)
    image = jpeg(finish(frame, style, rng, blur_px=int(rng.choice([1, 1, 3, 5])), blur_axis=0), style.jpeg_quality)
    if rng.random() < 0.5:  # the belt runs across the picture as often as along it
        image = np.ascontiguousarray(np.rot90(image))
        labels.boxes = [(y, 1 - x, bh, bw) for x, y, bw, bh in labels.boxes]
    return image, labels


@dataclass(frozen=True)
class SceneMix:
    """What a training set's scenes are made of: the keyword arguments of ``render_training_image``."""

    closeup: float = 0.0
    crowded: float = 0.0
    min_visible: float = MIN_VISIBLE
    camera: float = 0.0
    two_tone: float = 0.0
    poor_camera: float = 0.0
    flat: float = 0.0
    square: float = 0.0


@dataclass(frozen=True)
class Shard:
    """One independent render stream of a split: images ``start..start+count-1`` drawn from generator ``rng_key``."""

    cutout_dir: Path
    out: Path
    names: tuple[str, ...]
    split: str
    start: int
    count: int
    rng_key: tuple[int, ...]
    mix: SceneMix


def render_images(cutouts: list[Cutout], out: Path, split: str, indexes: Iterable[int], rng: Rng, mix: SceneMix) -> None:
    """Render scene ``i`` for each index in order from ``rng``, as ``out/images/<split>/i.jpg`` + its YOLO labels."""
    for i in indexes:
        image, labels = render_training_image(cutouts, rng, **asdict(mix))
        cv2.imwrite(str(out / "images" / split / f"{i:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (out / "labels" / split / f"{i:06d}.txt").write_text(labels.to_text())


def render_shard(shard: Shard) -> None:
    """Render one shard (run in a worker process, which loads the cut-outs itself)."""
    cutouts = load_cutouts(shard.cutout_dir, shard.names, cutout_split(shard.split))
    rng = np.random.default_rng(list(shard.rng_key))
    indexes = range(shard.start, shard.start + shard.count)
    render_images(cutouts, shard.out, shard.split, indexes, rng, shard.mix)


def cutout_split(split: str) -> str:
    """The cut-out split a dataset split is rendered from (``heldout`` scenes use the test items)."""
    return "test" if split == "heldout" else split


def write_training_set(
    cutout_dir: Path,
    out: Path,
    names: tuple[str, ...],
    counts: dict[str, int],
    seed: int = 0,
    closeup: float = 0.0,
    shards: int = 1,
    workers: int = 1,
    crowded: float = 0.0,
    min_visible: float = MIN_VISIBLE,
    camera: float = 0.0,
    two_tone: float = 0.0,
    poor_camera: float = 0.0,
    flat: float = 0.0,
    square: float = 0.0,
) -> Path:
    """Render ``counts[split]`` images per split into a YOLO dataset (``closeup``, ``crowded``, ``min_visible``,
    ``camera``, ``two_tone``, ``poor_camera``, ``flat``, ``square``: see render_training_image); returns its ``data.yaml``.

    With ``shards`` > 1 each split is rendered as that many independent streams (shard k seeded by
    ``[seed, split, k]``), ``workers`` processes at a time: the scenes depend on the seed and the shard count,
    never on the worker count. One shard is the single stream older recipes rendered.
    """
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    mix = SceneMix(closeup, crowded, min_visible, camera, two_tone, poor_camera, flat, square)
    jobs: list[Shard] = []
    for split_index, (split, n) in enumerate(counts.items()):
        cutouts = load_cutouts(cutout_dir, names, cutout_split(split))
        if not cutouts:
            raise FileNotFoundError(f"no cut-outs for split {split!r} in {cutout_dir}: run `farz datasets cutouts` first")
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        if shards <= 1:
            rng = np.random.default_rng([seed, split_index])
            render_images(cutouts, out, split, tqdm(range(n), desc=f"synth {split}", unit="img"), rng, mix)
            continue
        bounds = np.linspace(0, n, shards + 1).astype(int)
        for k in range(shards):
            start, end = int(bounds[k]), int(bounds[k + 1])
            jobs.append(Shard(cutout_dir, out, names, split, start, end - start, (seed, split_index, k), mix))
    if jobs:
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            list(tqdm(pool.map(render_shard, jobs), total=len(jobs), desc=f"synth {shards} shards a split", unit="shard"))
    return write_data_yaml(out, list(counts), names)


def write_data_yaml(out: Path, splits: list[str], names: tuple[str, ...]) -> Path:
    """``out/data.yaml`` of a YOLO dataset whose split ``s`` lies in ``out/images/s``; returns its path."""
    data = out / "data.yaml"
    lines = [f"path: {out.resolve()}", *(f"{s}: images/{s}" for s in splits), "names:"]
    lines += [f"  {i}: {n}" for i, n in enumerate(names)]
    data.write_text("\n".join(lines) + "\n")
    return data


@dataclass
class MovingItem:
    """An item travelling along the belt in a video: position in px, velocity in px/frame."""

    image: np.ndarray
    class_id: int
    x: float
    y: float
    vx: float
    vy: float
    counted: bool = False


DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}


@dataclass(frozen=True)
class VideoSpec:
    """A belt video to render: size px, fps, seconds, belt direction, speed px/frame, items per second (0: an
    empty belt, for counting false items)."""

    width: int = 640
    height: int = 360
    fps: int = 15
    seconds: float = 20.0
    direction: str = "right"
    speed: float = 10.0
    rate: float = 1.2
    seed: int = 0
    min_scale: float = 0.2  # item size range, as a fraction of the frame's short side (close-ups: larger)
    max_scale: float = 0.42


def count_line(spec: VideoSpec) -> tuple[float, float, float, float]:
    """The count line (0-1 coords) across the belt's middle, drawn so that the belt's motion is ``in``."""
    return {"right": (0.5, 1.0, 0.5, 0.0), "left": (0.5, 0.0, 0.5, 1.0), "down": (0.0, 0.5, 1.0, 0.5), "up": (1.0, 0.5, 0.0, 0.5)}[
        spec.direction
    ]


def render_video(cutouts: list[Cutout], names: tuple[str, ...], spec: VideoSpec, out_mp4: Path, line_in: bool = True) -> dict[str, object]:
    """Render a belt video, write ``NAME.mp4``, ``NAME.truth.json`` and ``NAME.yaml``; returns the truth.

    Every item enters fully outside the frame upstream and leaves fully outside downstream, so each
    one crosses the middle line exactly once; ``line_in`` False draws the line the other way round so
    the same motion counts as ``out``. The truth's ``crossings`` list each item once: the first frame
    (0-based) its centre is past the line, its class and direction, its centre ``x, y`` and image size
    ``w, h`` then (0-1 of the frame) and its velocity ``vx, vy`` (0-1 of the frame per frame).
    """
    rng = np.random.default_rng(spec.seed)
    style = BeltStyle.random(rng)
    dx, dy = DIRECTIONS[spec.direction]
    axis = 0 if dy else 1
    w, h = spec.width, spec.height
    strip = belt_strip(style, w if axis == 0 else h, 4 * (h if axis == 0 else w))
    line = count_line(spec)
    if not line_in:
        line = (line[2], line[3], line[0], line[1])
    crossings: list[dict[str, object]] = []
    items: list[MovingItem] = []
    frames = int(spec.seconds * spec.fps)
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out_mp4), cv2.VideoWriter.fourcc(*"mp4v"), spec.fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"cannot write video {out_mp4}")
    next_spawn = 0.0
    spawned = 0
    spawn_frames = int(frames - (w if axis else h) / spec.speed - 30)  # stop spawning so all leave in time
    for f in range(frames):
        if spec.rate > 0 and next_spawn <= f < spawn_frames:
            cut = cutouts[int(rng.integers(len(cutouts)))]
            img = transform_item(cut, rng.uniform(spec.min_scale, spec.max_scale) * min(w, h), float(rng.uniform(0, 360)), rng)
            ih, iw = img.shape[:2]
            speed = spec.speed * rng.uniform(0.9, 1.1)
            if axis == 1:
                x = -iw / 2 - 2 if dx > 0 else w + iw / 2 + 2
                y = rng.uniform(0.22, 0.78) * h
            else:
                y = -ih / 2 - 2 if dy > 0 else h + ih / 2 + 2
                x = rng.uniform(0.22, 0.78) * w
            spawned += 1
            items.append(MovingItem(img, cut.class_id, x, y, dx * speed + rng.normal(0, 0.3) * dy, dy * speed + rng.normal(0, 0.3) * dx))
            next_spawn = f + rng.exponential(spec.fps / spec.rate) + 0.5 * max(iw, ih) / speed
        offset = int(f * spec.speed) % strip.shape[0]
        rolled = np.roll(strip, offset * (dy if axis == 0 else dx), axis=0)
        frame = (rolled[:h] if axis == 0 else rolled[:w].transpose(1, 0, 2)).copy()
        draw_rails(frame, style, axis)
        for it in items:
            compose(frame, it.image, it.x, it.y, shadow=0.4)
        image = jpeg(finish(frame, style, rng, blur_px=max(1, int(spec.speed * 0.35)) | 1, blur_axis=axis), style.jpeg_quality)
        writer.write(image)
        for it in items:
            before = (it.x / w, it.y / h)
            it.x += it.vx
            it.y += it.vy
            if not it.counted and line_side(line, before) * line_side(line, (it.x / w, it.y / h)) < 0:
                it.counted = True
                direction = "in" if line_side(line, (it.x / w, it.y / h)) > 0 else "out"
                ih, iw = it.image.shape[:2]
                crossings.append(
                    {
                        "frame": f + 1,
                        "class": names[it.class_id],
                        "direction": direction,
                        "x": round(it.x / w, 4),
                        "y": round(it.y / h, 4),
                        "w": round(iw / w, 4),
                        "h": round(ih / h, 4),
                        "vx": round(it.vx / w, 5),
                        "vy": round(it.vy / h, 5),
                    }
                )
        items = [it for it in items if -w < it.x < 2 * w and -h < it.y < 2 * h and not _gone(it, w, h)]
    writer.release()
    return write_truth(out_mp4, names, crossings, frames, spec.fps, spawned, line, dict(spec.__dict__), line_in)


def write_truth(
    out_mp4: Path,
    names: tuple[str, ...],
    crossings: list[dict[str, object]],
    frames: int,
    fps: int,
    items: int,
    line: tuple[float, float, float, float],
    spec: dict[str, object],
    line_in: bool = True,
) -> dict[str, object]:
    """Write a rendered video's ``NAME.truth.json`` (counts per direction and class, in ``names`` order, from
    the item ``crossings``; frames, fps, items spawned, the line, the render ``spec``) and ``NAME.yaml`` (the
    line, whose `in` is the belt's motion when ``line_in``); returns the truth."""
    tally = {(str(c["direction"]), str(c["class"])): 0 for c in crossings}
    for c in crossings:
        tally[str(c["direction"]), str(c["class"])] += 1
    truth: dict[str, object] = {
        "counts": {d: {n: tally[d, n] for n in names if tally.get((d, n))} for d in ("in", "out")},
        "frames": frames,
        "fps": fps,
        "items": items,
        "line": list(line),
        "spec": spec,
        "crossings": crossings,
    }
    out_mp4.with_suffix(".truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    out_mp4.with_suffix(".yaml").write_text(
        f"# count line for {out_mp4.name} (0-1 coords; the belt's motion is `{'in' if line_in else 'out'}`)\n"
        f"line: [{', '.join(f'{v:g}' for v in line)}]\nanchor: center\n"
    )
    return truth


def line_side(line: tuple[float, float, float, float], p: tuple[float, float]) -> float:
    """Signed side of point ``p`` of the line x1,y1,x2,y2 (0-1): positive on its `in` side."""
    x1, y1, x2, y2 = line
    return (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1)


def _gone(it: MovingItem, w: int, h: int) -> bool:
    ih, iw = it.image.shape[:2]
    return (
        (it.vx > 0 and it.x - iw / 2 > w) or (it.vx < 0 and it.x + iw / 2 < 0)
        if abs(it.vx) > abs(it.vy)
        else (it.vy > 0 and it.y - ih / 2 > h) or (it.vy < 0 and it.y + ih / 2 < 0)
    )
