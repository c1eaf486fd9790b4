"""``LineCounter`` and ``ZoneCounter``: turn tracked detections into ``CountEvent`` values.

Rules (DESIGN.md §3): a track counts once, when its anchor crosses from one side of the line to the
other and is clearly on the new side (outside a hysteresis band); the crossing is judged on the motion
segment between two observations, so a fast item that jumps over the line or a zone between frames
still counts, and the crossing point must lie on the finite line. A track that disappears and comes
back with a new id near where the old one was last seen, soon after, inherits the old track's state,
so an id switch at the line does not count an item twice. Near is measured along each axis in box widths and
heights: a tall box (a cleat across the belt) lost on one side of the line does not pass its state to a box that
appears a few widths beyond it on the other, and a counted track passes its state to no box lying wholly before the
line.

A crossing is also judged on the track's own motion: one made by a jump against the way the track had been
moving over its last sightings, or with a box that changed size abruptly (a part of an item boxed, then the
whole item, or a neighbour), is not counted at once but held *pending*, and counted only when the track goes
on moving into the new side; a track that switched to another item therefore cannot count an item backwards.
So is a crossing by a track that has not yet travelled ``min_travel`` of its box size since it was first seen,
centre and trailing edge both: a box on something that stays put (a rail, the floor beside the belt) whose
centre wanders as its extent changes, or that is boxed further and further from a fixed edge, never counts, and
an item first seen near the line counts once it has moved on. So is a leap: a box that stood still and then
jumps across the line in one step, further than its recent speed explains (the belt's frame boxed elsewhere
for a frame).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from vision.detections import Detections
from vision.errors import LineError

ANCHORS = ("center", "bottom_center")
HISTORY = 5  # sightings a track's own motion across the line is judged over
Resolver = Callable[[int], tuple[int, float]]  # row of the frame's detections -> (class id, confidence) when it is counted


@dataclass(frozen=True)
class CountEvent:
    """One item counted: which line or zone, class, direction, the track and the frame it happened in."""

    line: str
    class_id: int
    class_name: str
    direction: str  # "in" | "out"
    track_id: int
    confidence: float
    frame_index: int


@dataclass(frozen=True)
class LineSpec:
    """A count line in normalised 0-1 image coordinates; ``in`` is a crossing from the side where
    ``(x2-x1)*(ay-y1) - (y2-y1)*(ax-x1) < 0`` to the side where it is ``> 0`` (image y points down)."""

    x1: float
    y1: float
    x2: float
    y2: float
    name: str = "line-1"
    anchor: str = "center"

    def __post_init__(self) -> None:
        values = (self.x1, self.y1, self.x2, self.y2)
        if not all(np.isfinite(v) and -0.0001 <= v <= 1.0001 for v in values):
            raise LineError(f"line {self.name!r}: coordinates must be in 0-1, got {values}")
        if self.x1 == self.x2 and self.y1 == self.y2:
            raise LineError(f"line {self.name!r}: both end points are the same {values[:2]}")
        if self.anchor not in ANCHORS:
            raise LineError(f"line {self.name!r}: anchor must be one of {ANCHORS}, got {self.anchor!r}")

    @staticmethod
    def parse(text: str, name: str = "line-1", anchor: str = "center") -> LineSpec:
        """Parse ``"x1,y1,x2,y2"`` (0-1 coordinates)."""
        parts = [p.strip() for p in text.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise LineError(f"line {text!r}: expected four numbers x1,y1,x2,y2 in 0-1") from None
        if len(values) != 4:
            raise LineError(f"line {text!r}: expected four numbers x1,y1,x2,y2 in 0-1, got {len(values)}")
        return LineSpec(values[0], values[1], values[2], values[3], name=name, anchor=anchor)


@dataclass
class _TrackState:
    anchor: npt.NDArray[np.float64]
    side: int  # -1, +1, or 0 while never clearly on a side
    side_anchor: npt.NDArray[np.float64]  # last anchor seen clearly on ``side``
    counted: bool
    last_frame: int
    extent: tuple[float, float]  # px, box width and height at last sight
    exited: bool = False
    velocity: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))  # px/frame
    history: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=HISTORY))  # (frame, signed px from the line)
    pending: tuple[int, float, int, tuple[float, float]] | None = None  # a crossing not yet confirmed: (side, signed px, frame, span)
    jumped: bool = False  # its box jumped across the line once: its motion is judged afresh from there
    birth: float | None = None  # signed px from the line where the track was first seen
    birth_span: tuple[float, float] | None = None  # signed px of the box's near and far edges when first seen
    span: tuple[float, float] = (0.0, 0.0)  # signed px of the box's near and far edges at last sight

    def observe(
        self,
        p: npt.NDArray[np.float64],
        frame_index: int,
        extent: tuple[float, float],
        distance: float | None = None,
        span: tuple[float, float] | None = None,
    ) -> None:
        """Record a new sighting: anchor, velocity since the last one, frame, box width and height, signed distance
        to a line and the signed distances of the box's edges nearest and furthest from the `in` side."""
        gap = frame_index - self.last_frame
        if gap > 0:
            self.velocity = (p - self.anchor) / gap
        self.anchor, self.last_frame, self.extent = p, frame_index, extent
        if distance is not None:
            self.history.append((frame_index, distance))
            if self.birth is None:
                self.birth = distance
        if span is not None:
            self.span = span
            if self.birth_span is None:
                self.birth_span = span

    def left_behind(self, anchor: npt.NDArray[np.float64], age: int) -> bool:
        """Whether ``anchor``, ``age`` frames after this track was last seen, lies further behind where it was seen
        than the track moved on since, plus half its box diagonal: a track that moves (1 px/frame or more) cannot
        have gone back there; a box there is the item behind it."""
        speed = float(np.hypot(*self.velocity))
        if speed < 1.0:
            return False
        along = float((anchor - self.anchor) @ self.velocity) / speed
        return along < -(speed * age + 0.5 * float(np.hypot(*self.extent)))

    @property
    def size(self) -> float:
        """px, the larger box side at last sight."""
        return max(self.extent)

    def normal_speed(self) -> float | None:
        """px/frame towards the `in` side over the recorded sightings; None over fewer than 2 frames."""
        if len(self.history) < 2 or self.history[-1][0] - self.history[0][0] < 2:
            return None
        (f0, d0), (f1, d1) = self.history[0], self.history[-1]
        return (d1 - d0) / (f1 - f0)


@dataclass
class _Memory:
    """Per-track state of one counter, pruned after ``max_age`` frames unseen."""

    states: dict[int, _TrackState] = field(default_factory=dict)
    carried: set[int] = field(default_factory=set)  # tracks counted by the counter this one replaced
    frames_since_carried: int = 0

    def counted(self) -> frozenset[int]:
        """Ids of the tracks already counted here (or carried over as counted)."""
        return frozenset(self.carried | {t for t, s in self.states.items() if s.counted})

    def forget(self, track_ids: frozenset[int]) -> None:
        """Drop what is known of the uncounted tracks ``track_ids`` (parts of another item, not items)."""
        for tid in track_ids:
            if tid in self.states and not self.states[tid].counted:
                del self.states[tid]

    def prune(self, frame_index: int, max_age: int) -> None:
        self.frames_since_carried += 1
        if self.frames_since_carried > max_age:
            self.carried.clear()  # a carried track unseen this long is gone
        for tid in [t for t, s in self.states.items() if frame_index - s.last_frame > max_age]:
            del self.states[tid]

    def inherit(
        self,
        anchor: npt.NDArray[np.float64],
        extent: tuple[float, float],
        frame_index: int,
        window: int,
        radius: float,
        present: frozenset[int],
        clear_side: int = 0,
    ) -> _TrackState | None:
        """State of the nearest track lost within ``window`` frames, and not among the ids ``present`` in
        this frame, whose predicted anchor (last anchor moved on at its last velocity) is within ``radius`` box
        sizes of ``anchor`` (an id switch), its box there and the new one apart by no more than half the smaller on
        either axis, and not left behind it (``_TrackState.left_behind``), removed from memory, without a crossing it
        held pending; None if none. A track counted and last seen on one side of a line is not taken for a new box
        lying wholly on the other (``clear_side``: the side of the line the new box lies wholly on, 0 where it touches
        the line's band or for a zone): that is the next item, before the line. The offset is measured in widths across and heights down
        (the larger of the two boxes' on each axis), so a square box's reach is a circle and an elongated one's an
        ellipse along it."""
        best, best_d = None, float("inf")
        for tid, s in self.states.items():
            age = frame_index - s.last_frame
            if 0 < age <= window and tid not in present:
                dx, dy = anchor - (s.anchor + s.velocity * age)
                d = float(np.hypot(dx / max(extent[0], s.extent[0], 1.0), dy / max(extent[1], s.extent[1], 1.0)))
                axes = ((dx, extent[0], s.extent[0]), (dy, extent[1], s.extent[1]))  # offset, new and lost box extents
                apart = any(abs(o) - (a + b) / 2 > 0.5 * min(a, b) for o, a, b in axes)
                back = s.counted and clear_side != 0 and s.side == -clear_side
                if d <= radius and d < best_d and not apart and not back and not s.left_behind(anchor, age):
                    best, best_d = tid, d
        if best is None:
            return None
        state = self.states.pop(best)
        state.pending = None  # a crossing held for the lost track's own motion: a new id's position is not that
        return state


class LineCounter:
    """Counts tracks crossing one line; ``update`` returns the new ``CountEvent`` values of a frame.

    Args:
        spec: the line, in 0-1 coordinates, with its name and anchor.
        names: class names by class id.
        hysteresis: half-width of the dead band around the line, as a fraction of the frame diagonal.
        relink_frames: how long (frames) a lost track's state may be inherited by a new id.
        relink_radius: how far a new id may be from where the lost track was predicted to be, in box widths
            across and heights down.
        counted: ids of tracks already counted by the counter this one replaces (a line edited while the
            agent runs): they are not counted again.
        size_jump: a crossing step whose box size (its larger side) changes by more than this factor is held
            pending: the box switched between a part and a whole item, or to another item.
        min_speed: px/frame across the line: a track that moved at least this fast one way over its last
            sightings and then crosses the other way is held pending.
        confirm: how far past where it crossed (in box sizes, at least the dead band) a pending track must
            move on into the new side to be counted, within ``confirm_frames`` frames.
        min_travel: how far (in box sizes) a track must have moved towards the new side since it was first seen
            for its crossing to count at once; a crossing before that is held pending.
        trailing_travel: the box's trailing edge (the one away from the new side) must have moved as far too, and
            for a pending crossing on as far as its centre: a box on something that stays put, boxed from a fixed
            edge further and further, moves only its leading edge.
        sudden_step: a crossing step longer than this many times the track's recent speed across the line (at least
            ``min_speed``) over the frames since its last sighting, and longer than ``sudden_floor`` of its box size,
            is held pending: a box that stood still (the belt's frame) and jumps across the line for a frame.
            None: no such check.
    """

    def __init__(
        self,
        spec: LineSpec,
        names: tuple[str, ...],
        hysteresis: float = 0.01,
        relink_frames: int = 30,
        relink_radius: float = 1.5,
        counted: frozenset[int] = frozenset(),
        size_jump: float = 1.6,
        min_speed: float = 0.5,
        confirm: float = 0.25,
        confirm_frames: int = 30,
        min_travel: float = 0.25,
        trailing_travel: bool = True,
        sudden_step: float | None = 3.0,
        sudden_floor: float = 0.15,
    ) -> None:
        self.spec = spec
        self.names = names
        self.hysteresis = hysteresis
        self.relink_frames = relink_frames
        self.relink_radius = relink_radius
        self.size_jump = size_jump
        self.min_speed = min_speed
        self.confirm = confirm
        self.confirm_frames = confirm_frames
        self.min_travel = min_travel
        self.trailing_travel = trailing_travel
        self.sudden_step = sudden_step
        self.sudden_floor = sudden_floor
        self.totals: dict[tuple[str, str], int] = {}
        self._memory = _Memory(carried=set(counted))
        self._frame_size: tuple[int, int] | None = None
        self._p1 = self._p2 = np.zeros(2)
        self._band = 0.0
        self._normal = np.zeros(2)
        self._resides = False  # carried-over tracks still to be placed on this line's sides

    def reset(self) -> None:
        """Forget tracks and totals."""
        self.totals = {}
        self._memory = _Memory()

    def forget(self, track_ids: frozenset[int]) -> None:
        """Forget the uncounted tracks ``track_ids``: parts of another item, whose crossing is not an item's."""
        self._memory.forget(track_ids)

    def counted_tracks(self) -> frozenset[int]:
        """Ids of the tracks this line has counted (to carry over when the line is edited)."""
        return self._memory.counted()

    def carry_from(self, previous: LineCounter) -> None:
        """Take over the tracks of the counter this one replaces (the line was edited while counting): a
        track it counted is not counted again, and every other track keeps where it was last seen clearly
        on a side — judged against this line at the next frame — so a track on its way across still counts."""
        self._memory = _Memory(
            {
                tid: replace(state, velocity=state.velocity.copy(), history=deque(state.history, maxlen=HISTORY), pending=None)
                for tid, state in previous._memory.states.items()
            },
            set(previous._memory.carried),
        )
        self._resides = True

    def _geometry(self, width: int, height: int) -> None:
        if self._frame_size != (width, height):
            self._frame_size = (width, height)
            self._p1 = np.array([self.spec.x1 * width, self.spec.y1 * height])
            self._p2 = np.array([self.spec.x2 * width, self.spec.y2 * height])
            self._band = self.hysteresis * float(np.hypot(width, height))
            d = self._p2 - self._p1
            self._normal = np.array([-d[1], d[0]]) / np.hypot(*d)  # unit normal: positive on the `in` side

    def _signed_distance(self, p: npt.NDArray[np.float64]) -> float:
        return float((p - self._p1) @ self._normal)

    def _moves_across(
        self, state: _TrackState, side: int, size: float, distance: float, span: tuple[float, float], frame_index: int
    ) -> bool:
        """Whether a crossing to ``side`` (at ``frame_index``, ``distance`` px from the line, box edges at ``span``) is
        the track's own motion: its box kept its size, it (and its trailing edge) has travelled ``min_travel`` box sizes towards
        ``side`` since it was first seen, it did not leap there from standing still, and it was not moving the other
        way over its last sightings."""
        small, large = sorted((max(size, 1.0), max(state.size, 1.0)))
        if large > self.size_jump * small:
            return False
        if state.birth is not None and (distance - state.birth) * side < self.min_travel * size:
            return False
        trailing = self._trailing_travel(state.birth_span, span, side) if state.birth_span is not None else None
        if self.trailing_travel and trailing is not None and trailing < self.min_travel * size:
            return False
        speed = state.normal_speed()
        if speed is None:  # too few sightings to tell: a new track's first crossing counts, one after a jump waits
            return not state.jumped
        if self.sudden_step is not None and state.history:
            last_frame, last_distance = state.history[-1]
            gap = max(frame_index - last_frame, 1)
            step = (distance - last_distance) * side
            if step > max(self.sudden_step * max(abs(speed), self.min_speed) * gap, self.sudden_floor * size):
                return False
        return abs(speed) < self.min_speed or (speed > 0) == (side > 0)

    @staticmethod
    def _trailing_travel(before: tuple[float, float], now: tuple[float, float], side: int) -> float:
        """px the box's trailing edge (the one away from ``side``) moved towards ``side`` from ``before`` to ``now``."""
        edge = 0 if side > 0 else 1
        return (now[edge] - before[edge]) * side

    def _crosses_segment(self, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> bool:
        """Whether the motion a→b passes the finite line (with a tolerance of the dead band)."""
        da, db = self._signed_distance(a), self._signed_distance(b)
        if da == db:
            return False
        t = da / (da - db)
        hit = a + t * (b - a)
        d = self._p2 - self._p1
        u = float(np.dot(hit - self._p1, d) / np.dot(d, d))
        margin = self._band / float(np.hypot(*d))
        return -margin <= u <= 1 + margin

    def update(
        self, detections: Detections, width: int, height: int, frame_index: int, resolve: Resolver | None = None
    ) -> list[CountEvent]:
        """Advance with one frame's tracked detections (frame size in px); returns new events. ``resolve`` gives
        the class and confidence of a row when it is counted (default: the row's own)."""
        if detections.tracker_id is None:
            raise ValueError("LineCounter needs tracked detections (tracker_id set)")
        self._geometry(width, height)
        if self._resides:
            self._resides = False
            for kept in self._memory.states.values():
                d = self._signed_distance(kept.side_anchor)
                kept.side = 1 if d > self._band else -1 if d < -self._band else 0
        events: list[CountEvent] = []
        anchors = detections.anchors(self.spec.anchor).astype(np.float64)
        extents = [(float(w), float(h)) for w, h in (detections.xyxy[:, 2:] - detections.xyxy[:, :2]).tolist()]
        sizes = [max(e) for e in extents]
        distances = ((anchors - self._p1) @ self._normal).tolist()
        xy = detections.xyxy.astype(np.float64)
        mid = ((xy[:, :2] + xy[:, 2:]) / 2 - self._p1) @ self._normal
        half = (xy[:, 2:] - xy[:, :2]) @ np.abs(self._normal) / 2  # px, half the box's extent across the line
        spans = list(zip((mid - half).tolist(), (mid + half).tolist(), strict=True))
        present = frozenset(detections.tracker_id.tolist())  # a track seen this frame is not lost, whatever the row order
        for i, tid in enumerate(detections.tracker_id.tolist()):
            p = anchors[i]
            dist = distances[i]
            side = 1 if dist > self._band else -1 if dist < -self._band else 0
            state = self._memory.states.get(tid)
            if state is None:
                clear = spans[i][1] < -self._band if side < 0 else spans[i][0] > self._band  # the whole box on its side
                state = self._memory.inherit(
                    p, extents[i], frame_index, self.relink_frames, self.relink_radius, present, side if clear else 0
                )
                if state is None:
                    state = _TrackState(p, side, p, tid in self._memory.carried, frame_index, extents[i])
                self._memory.states[tid] = state
            direction = 0  # +1 / -1: count this track now, `in` / `out`
            if side != 0 and state.side not in (0, side) and not state.counted and self._crosses_segment(state.side_anchor, p):
                state.pending = None
                if self._moves_across(state, side, sizes[i], dist, spans[i], frame_index):
                    direction = side
                else:  # a jump, or too little travel yet: wait for the track's own motion to confirm it, judged from here on
                    state.pending = (side, dist, frame_index, spans[i])
                    state.history.clear()
                    state.jumped = True
            elif state.pending is not None and not state.counted:
                pending_side, pending_dist, pending_frame, pending_span = state.pending
                far_enough = max(self._band, self.confirm * sizes[i])
                trailing = not self.trailing_travel or self._trailing_travel(pending_span, spans[i], pending_side) >= far_enough
                if frame_index - pending_frame > self.confirm_frames:  # too late, even for a track unseen meanwhile
                    state.pending = None
                elif (dist - pending_dist) * pending_side >= far_enough and side == pending_side and trailing:
                    direction, state.pending = pending_side, None
            if direction:
                state.counted = True
                name = "in" if direction > 0 else "out"
                cid, confidence = resolve(i) if resolve else (int(detections.class_id[i]), float(detections.confidence[i]))
                events.append(CountEvent(self.spec.name, cid, self.names[cid], name, tid, confidence, frame_index))
                self.totals[(name, self.names[cid])] = self.totals.get((name, self.names[cid]), 0) + 1
            if side != 0:
                state.side, state.side_anchor = side, p
            state.observe(p, frame_index, extents[i], dist, spans[i])
        self._memory.prune(frame_index, max(self.relink_frames, 1) * 4)
        return events


class ZoneCounter:
    """Counts tracks entering (``in``) and leaving (``out``) a polygon zone, once each per track.

    The motion segment between two observations is tested against the polygon, so an item that jumps
    across the whole zone between frames is counted ``in`` and ``out`` in that frame.
    """

    def __init__(
        self,
        polygon: list[tuple[float, float]],
        names: tuple[str, ...],
        name: str = "zone-1",
        anchor: str = "center",
        relink_frames: int = 30,
        relink_radius: float = 1.5,
        counted: frozenset[int] = frozenset(),
    ) -> None:
        if len(polygon) < 3 or not all(-0.0001 <= v <= 1.0001 for pt in polygon for v in pt):
            raise LineError(f"zone {name!r}: needs at least 3 points with 0-1 coordinates, got {polygon}")
        if anchor not in ANCHORS:
            raise LineError(f"zone {name!r}: anchor must be one of {ANCHORS}, got {anchor!r}")
        self.polygon = np.asarray(polygon, np.float64)
        self.names = names
        self.name = name
        self.anchor = anchor
        self.relink_frames = relink_frames
        self.relink_radius = relink_radius
        self.totals: dict[tuple[str, str], int] = {}
        self._memory = _Memory(carried=set(counted))

    def reset(self) -> None:
        """Forget tracks and totals."""
        self.totals = {}
        self._memory = _Memory()

    def forget(self, track_ids: frozenset[int]) -> None:
        """Forget the uncounted tracks ``track_ids`` (``LineCounter.forget``)."""
        self._memory.forget(track_ids)

    def counted_tracks(self) -> frozenset[int]:
        """Ids of the tracks this zone has counted entering (to carry over when the zone is edited)."""
        return self._memory.counted()

    def _inside(self, p: npt.NDArray[np.float64], poly: npt.NDArray[np.float64]) -> bool:
        x, y = p
        inside = False
        for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside

    @staticmethod
    def _segments_intersect(
        a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], c: npt.NDArray[np.float64], d: npt.NDArray[np.float64]
    ) -> bool:
        def orient(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64], r: npt.NDArray[np.float64]) -> float:
            return float((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

        return orient(a, b, c) * orient(a, b, d) < 0 and orient(c, d, a) * orient(c, d, b) < 0

    def _passes(self, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], poly: npt.NDArray[np.float64]) -> bool:
        return any(self._segments_intersect(a, b, p, q) for p, q in zip(poly, np.roll(poly, -1, axis=0), strict=True))

    def update(
        self, detections: Detections, width: int, height: int, frame_index: int, resolve: Resolver | None = None
    ) -> list[CountEvent]:
        """Advance with one frame's tracked detections (frame size in px); returns new events (``resolve``: as
        ``LineCounter.update``)."""
        if detections.tracker_id is None:
            raise ValueError("ZoneCounter needs tracked detections (tracker_id set)")
        poly = self.polygon * np.array([width, height])
        events: list[CountEvent] = []
        anchors = detections.anchors(self.anchor).astype(np.float64)
        extents = [(float(w), float(h)) for w, h in (detections.xyxy[:, 2:] - detections.xyxy[:, :2]).tolist()]
        present = frozenset(detections.tracker_id.tolist())
        for i, tid in enumerate(detections.tracker_id.tolist()):
            p = anchors[i]
            inside = self._inside(p, poly)
            state = self._memory.states.get(tid)
            if state is None:
                state = self._memory.inherit(p, extents[i], frame_index, self.relink_frames, self.relink_radius, present)
                if state is None:
                    # A new item seen first inside the zone (dropped into it) has entered it.
                    state = _TrackState(p, -1, p, tid in self._memory.carried, frame_index, extents[i])
                self._memory.states[tid] = state
            was_inside = state.side == 1
            passed = not was_inside and not inside and self._passes(state.anchor, p, poly)
            enters = not was_inside and (inside or passed) and not state.counted
            leaves = ((was_inside and not inside) or passed) and (state.counted or enters) and not state.exited
            cid, confidence = int(detections.class_id[i]), float(detections.confidence[i])
            if resolve is not None and (enters or leaves):
                cid, confidence = resolve(i)
            if enters:
                state.counted = True
                events.append(self._event("in", cid, tid, confidence, frame_index))
            if leaves:
                state.exited = True
                events.append(self._event("out", cid, tid, confidence, frame_index))
            state.side = 1 if inside else -1
            state.observe(p, frame_index, extents[i])
        self._memory.prune(frame_index, max(self.relink_frames, 1) * 4)
        return events

    def _event(self, direction: str, cid: int, tid: int, confidence: float, frame_index: int) -> CountEvent:
        self.totals[(direction, self.names[cid])] = self.totals.get((direction, self.names[cid]), 0) + 1
        return CountEvent(self.name, cid, self.names[cid], direction, tid, confidence, frame_index)
