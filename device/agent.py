"""``Agent``: camera → pipeline → outbox → uploader, with heartbeats and the live view.

Every count is committed to the outbox before it is shown or sent. A video file's replay position is
committed with the events of the frame it reached, so an agent restarted after a crash resumes where
its committed events end and never counts a replay twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from device.config import AgentConfig, read_token_file
from device.count import (
    CountSummary,
    belt_turn,
    build_counters,
    build_pipeline,
    counts_by_direction,
    frame_messages,
    ignore_zones,
    input_sizer,
    privacy_mask,
)
from device.count_config import CountSettings
from device.eventid import new_event_id
from device.hard_samples import HardSampleKeeper, SampleRules
from device.live_sources import LiveSource, open_live_source
from device.liveauth import TokenChecker, ensure_local_token, server_fetch
from device.liveview import LiveState, LiveView
from device.model_update import ModelUpdater, classifier_kind, detector_kind
from device.outbox import Outbox, OutboxFull
from device.review_samples import ReviewKeeper, ReviewRules
from device.setup import DryRun, SetupError, apply_edit, geometry, save_count_settings
from device.sources import Frame, VideoFileSource
from device.system import cpu_temperature_c, resident_memory_mb
from device.uploader import Uploader
from vision import Annotator, CountEvent, Detections, PrivacyMask

log = logging.getLogger("farz.agent")
STATE_EVERY_S = 1.0  # a replay position is committed at least this often (and with every event)
RESUME_WARMUP_FRAMES = 30  # frames replayed before a resume point to rebuild tracks; their counts are not sent again


def is_file_source(source: str) -> bool:
    return not (source.startswith(("picamera", "usb:")) or "://" in source)


@dataclass
class RunStats:
    """Moving figures of the counting loop, for heartbeats and the live view."""

    frames: int = 0
    fps: float = 0.0
    inference_ms: float = 0.0
    outbox_full: bool = False
    started: float = 0.0


class Agent:
    """One device agent. ``run()`` counts until the source ends (a file) or ``stop()`` is called."""

    def __init__(self, config: AgentConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path  # where the live view's setup page saves edits; None: it cannot save
        self.stats = RunStats(started=time.monotonic())
        self._stop = threading.Event()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(config.data_dir / "outbox.db", int(config.outbox.max_mb * 2**20))
        self.pipeline = build_pipeline(config.model, config.count, config.classifier)
        self.model_id = self._models_id()
        self.base_totals: dict[tuple[str, str], int] = {}
        self.live_source: LiveSource | None = None
        token = self._read_token()
        names = self.pipeline.names
        hs = config.hard_samples
        mask = privacy_mask(config.count)
        self.samples = (
            HardSampleKeeper(
                config.data_dir / "samples", names, SampleRules(min_interval_s=hs.min_interval_s, max_samples=hs.max_samples), mask
            )
            if hs.enabled
            else None
        )
        self.reviews = self._review_keeper(mask)
        self._reference: Frame | None = None
        self._last_frame_start: float | None = None
        self.updater = (
            ModelUpdater(
                config.server_url,
                config.device_id,
                token,
                config.data_dir / "models",
                self.pipeline.detector,
                detector_kind(self.pipeline.detector.settings),
                lambda: self._reference,
                config.model_check_interval_s,
                config.request_timeout_s,
            )
            if config.server_url
            else None
        )
        material = self.pipeline.material
        self.classifier_updater = (
            ModelUpdater(
                config.server_url,
                config.device_id,
                token,
                config.data_dir / "models",
                material.classifier,
                classifier_kind(config.count.threads),
                lambda: self._reference,
                config.model_check_interval_s,
                config.request_timeout_s,
            )
            if config.server_url and material is not None
            else None
        )
        self.uploader = (
            Uploader(
                self.outbox,
                config.server_url,
                config.device_id,
                token,
                self.heartbeat,
                config.upload_interval_s,
                config.heartbeat_interval_s,
                config.request_timeout_s,
                config.outbox.batch_size,
                config.retry_max_s,
                self.samples,
                reviews=self.reviews,
            )
            if config.server_url
            else None
        )
        self.live_state = LiveState(self._annotator(config.count), mask)
        self.live_view: LiveView | None = None
        self._setup_lock = threading.Lock()
        self._pending_count: CountSettings | None = None
        self.dry_run: DryRun | None = None

    def _review_keeper(self, mask: PrivacyMask) -> ReviewKeeper | None:
        """Keeps counted tracks for review (the two-stage pipeline only: it needs the classifier's crops)."""
        review, material = self.config.review, self.pipeline.material
        if not review.enabled or material is None:
            return None
        return ReviewKeeper(
            self.config.data_dir / "reviews",
            material.names,
            self.pipeline.detector.info.model_id,
            material.classifier.info.model_id,
            material.settings,
            ReviewRules(sample_rate=review.sample_rate, max_items=review.max_items),
            mask,
            review.seed,
        )

    def _annotator(self, settings: CountSettings) -> Annotator:
        return Annotator(self.pipeline.names, settings.line_specs(), tuple(tuple(z.polygon) for z in settings.zones))

    # The live view's setup page (device.liveview.Setup) ------------------------------------------------

    def setup_state(self) -> dict[str, object]:
        """The count geometry in use, the frame size, and whether edits can be saved."""
        size = self.live_state.frame_size()
        return {
            "device_id": self.config.device_id,
            "count": geometry(self.config.count),
            "frame": {"width": size[0], "height": size[1]} if size else None,
            "config_file": str(self.config_path) if self.config_path else None,
            "can_save": self.config_path is not None,
        }

    def start_dry_run(self, edit: object) -> dict[str, object]:
        """Count the next items with ``edit`` applied, beside the real counters; SetupError on a bad edit."""
        settings = apply_edit(self.config.count, edit)
        run = DryRun(settings, self.pipeline.names)
        with self._setup_lock:
            self.dry_run = run
        log.info("setup: dry run started with %d line(s), %d zone(s)", len(settings.lines), len(settings.zones))
        return run.state()

    def dry_run_state(self) -> dict[str, object]:
        with self._setup_lock:
            run = self.dry_run
        return run.state() if run is not None else {"active": False}

    def stop_dry_run(self) -> None:
        with self._setup_lock:
            self.dry_run = None

    def save_setup(self, edit: object) -> dict[str, object]:
        """Validate ``edit``, write it into the config file atomically and apply it between two frames."""
        if self.config_path is None:
            raise SetupError("this agent was started without a config file (--config), so there is nowhere to save; start it with one")
        settings = apply_edit(self.config.count, edit)
        backup = save_count_settings(self.config_path, settings)
        with self._setup_lock:
            self._pending_count = settings
            self.dry_run = None
        log.info("setup: saved %s (previous kept as %s); applying it from the next frame", self.config_path, backup.name)
        return {"saved": str(self.config_path), "backup": str(backup), "count": geometry(settings)}

    def _apply_pending_count(self) -> None:
        """Between frames: switch to saved count settings. Unchanged lines keep their state; a changed line
        does not count again a track its old version counted; the old counters' totals are kept."""
        with self._setup_lock:
            settings, self._pending_count = self._pending_count, None
        if settings is None:
            return
        old = self.pipeline.counters
        new = build_counters(settings, self.pipeline.names, old)
        for counter in old:
            if not any(counter is kept for kept in new):
                for key, n in counter.totals.items():
                    self.base_totals[key] = self.base_totals.get(key, 0) + n
        self.pipeline.counters = new
        self.pipeline.ignore = ignore_zones(settings)
        self.pipeline.turn = belt_turn(settings)
        if settings.input_size != self.config.count.input_size:
            self.pipeline.sizer = input_sizer(settings)
        mask = privacy_mask(settings)
        self.live_state.reconfigure(self._annotator(settings), mask)
        if self.samples is not None:
            self.samples.mask = mask
        if self.reviews is not None:
            self.reviews.mask = mask
        self.config = self.config.model_copy(update={"count": settings})
        log.info("now counting with the saved setup: %s", ", ".join(c.name for c in settings.lines) or "zones only")

    def _models_id(self) -> str:
        """What every event and heartbeat names: ``detector@sha256:…`` and, in the two-stage pipeline,
        ``+classifier@sha256:…``."""
        detector = self.pipeline.detector.info.model_id
        material = self.pipeline.material
        return detector if material is None else f"{detector}+{material.classifier.info.model_id}"

    def _token_checker(self) -> TokenChecker:
        """Live-view tokens: the device-local one (made in the data folder when the config names none) and,
        with a server, people's tokens checked there."""
        lv = self.config.live_view
        path = lv.token_file or self.config.data_dir / "liveview.token"
        created = not path.is_file()
        local = ensure_local_token(path)
        if created:
            log.warning("live view: made a device-local installer token in %s (read it there; it is never logged)", path)
        fetch = server_fetch(self.config.server_url, min(self.config.request_timeout_s, 5.0)) if self.config.server_url else None
        return TokenChecker(local, self.config.site, fetch, fresh_s=lv.token_cache_s, stale_s=lv.token_offline_s)

    def _read_token(self) -> str | None:
        return read_token_file(self.config.token_file) if self.config.token_file is not None else None

    def stop(self) -> None:
        """Ask the loop to finish after the current frame (safe from a signal handler)."""
        self._stop.set()

    def totals(self) -> dict[tuple[str, str], int]:
        out = dict(self.base_totals)
        for key, n in self.pipeline.totals().items():
            out[key] = out.get(key, 0) + n
        return out

    def heartbeat(self) -> dict[str, object]:
        """The heartbeat sent to the server (DESIGN.md §3)."""
        health = self.live_source.health if self.live_source else None
        last = self.uploader.stats.last_upload if self.uploader else None
        return {
            "ts": _iso_now(),
            "fps": round(self.stats.fps, 2),
            "inference_ms": round(self.stats.inference_ms, 2),
            "dropped_frames": health.dropped if health else 0,
            "reconnects": health.reconnects if health else 0,
            "outbox_depth": self.outbox.depth(),
            "outbox_full": self.stats.outbox_full,
            "model": self.model_id,
            "uptime_s": round(time.monotonic() - self.stats.started, 1),
            "temperature_c": cpu_temperature_c(),
            "memory_mb": resident_memory_mb(),
            "model_update": self.updater.status if self.updater else None,
            "classifier_update": self.classifier_updater.status if self.classifier_updater else None,
            "hard_samples_waiting": len(self.samples.pending()) if self.samples else 0,
            "review_items_waiting": len(self.reviews.pending()) if self.reviews else 0,
            "last_upload": datetime.fromtimestamp(last, UTC).isoformat().replace("+00:00", "Z") if last else None,
        }

    def status(self) -> dict[str, object]:
        """``/api/status`` of the live view."""
        return {
            "device_id": self.config.device_id,
            "site": self.config.site,
            "counts": counts_by_direction(self.totals()),
            **self.heartbeat(),
        }

    def _wire(self, event: CountEvent) -> dict[str, object]:
        return {
            "event_id": new_event_id(),
            "ts": _iso_now(),
            "device_id": self.config.device_id,
            "line": event.line,
            "class": event.class_name,
            "direction": event.direction,
            "track_id": event.track_id,
            "confidence": round(event.confidence, 4),
            "model": self.model_id,
        }

    def _frames(self) -> tuple[Iterable[Frame], str | None, int, int]:
        """The frame iterator, the replay state key (files only), the number of the frame before its first
        frame, and the frame to resume after (the frames up to it only warm the tracker up)."""
        source = self.config.source
        if not is_file_source(source):
            self.live_source = open_live_source(source)
            return self.live_source, None, 0, 0
        path = Path(source).resolve()
        stat = path.stat()
        key = f"replay:{path}:{stat.st_size}:{int(stat.st_mtime)}"
        saved = self.outbox.get_state(key) or {}
        assert isinstance(saved, dict)
        start = int(saved.get("frame", 0))
        self.base_totals = {tuple(k.split(":", 1)): int(v) for k, v in (saved.get("totals") or {}).items()}
        first = max(0, start - RESUME_WARMUP_FRAMES)
        video = VideoFileSource(path, start_frame=first)
        if start:
            log.info("resuming %s after frame %d of %d (its events are already in the outbox)", path.name, start, video.info.frame_count)
        return video, key, first, start

    def _commit(self, events: list[dict[str, object]], state: dict[str, object] | None) -> None:
        """Commit events (and state); when the outbox is full, wait and say so loudly — never drop."""
        while True:
            try:
                self.outbox.commit(events, state)
                if self.stats.outbox_full:
                    log.warning("outbox has room again; counting resumed")
                self.stats.outbox_full = False
                return
            except OutboxFull as exc:
                if not self.stats.outbox_full:
                    log.error("%s: counting is paused until uploads free space (no count is dropped)", exc)
                self.stats.outbox_full = True
                if self._stop.wait(1.0):
                    raise

    def run(self) -> CountSummary:
        """Count until the source ends (unless ``loop``) or ``stop()``; returns the summary (totals of
        the whole replay, across restarts)."""
        if self.uploader:
            self.uploader.start()
        for updater in (self.updater, self.classifier_updater):
            if updater is not None:
                updater.start()
        if self.config.live_view.enabled:
            self.live_view = LiveView(self.live_state, self.status, self._token_checker(), self, self.config.live_view)
            self.live_view.start()
            log.info("live view on http://%s:%d/ (a token is needed to open it)", self.config.live_view.host, self.live_view.port)
        log.info("counting %s with %s", self.config.source.split("@")[-1], self.model_id)
        start = time.perf_counter()
        processed = 0
        while True:
            frames, key, frame_no, resume_after = self._frames()
            processed += self._run_pass(frames, key, frame_no, resume_after)
            if self._stop.is_set() or not (self.config.loop and key):
                break
            # Loop a file: start it again from its first frame, keeping the totals counted so far.
            self.base_totals = self.totals()
            self.pipeline.reset()
            self._commit([], self._state(key, 0))
        seconds = time.perf_counter() - start
        return CountSummary(counts_by_direction(self.totals()), processed, seconds, processed / seconds if seconds > 0 else 0.0)

    def _state(self, key: str, frame_no: int) -> dict[str, object]:
        return {key: {"frame": frame_no, "totals": {f"{d}:{c}": n for (d, c), n in self.totals().items()}}}

    def _run_pass(self, frames: Iterable[Frame], key: str | None, frame_no: int, resume_after: int = 0) -> int:
        """One pass over a source; returns the frames processed. Frames numbered up to ``resume_after``
        were counted before a restart: they rebuild the tracks (so that an item on the line at the resume
        point is not lost) and their counts, already in the outbox, are neither sent nor added again."""
        file_fps = frames.info.fps if isinstance(frames, VideoFileSource) else 0.0
        fps_hint = file_fps if self.config.realtime else 0.0
        processed = 0
        last_state = time.perf_counter()
        try:
            for frame in frames:
                t0 = time.perf_counter()
                self._maybe_swap_model(frame)
                self._apply_pending_count()
                result = self.pipeline.process(frame)
                frame_no += 1
                for message in frame_messages(result):
                    log.info("%s", message)
                processed += 1
                if self.reviews is not None:
                    self.reviews.observe(frame, result.classified, result.frame_index)
                if frame_no <= resume_after:
                    for e in result.events:
                        self.base_totals[(e.direction, e.class_name)] = self.base_totals.get((e.direction, e.class_name), 0) - 1
                    continue
                events = [self._wire(e) for e in result.events]
                if key and (events or t0 - last_state >= STATE_EVERY_S):
                    self._commit(events, self._state(key, frame_no))
                    last_state = t0
                elif events:
                    self._commit(events, None)
                if self.reviews is not None and result.events:
                    self.reviews.counted(result.events)
                if events and self.uploader:
                    self.uploader.wake()
                self._feed_dry_run(frame, result.detections)
                self.live_state.publish(frame, result.detections, self.totals())
                if self.samples is not None:
                    # A file replays faster than it was filmed: pace samples by footage time, not wall clock.
                    footage_s = self.stats.frames / file_fps if file_fps else None
                    material = self.pipeline.material.settings if self.pipeline.material is not None else None
                    self.samples.consider(
                        frame, result.detections, self.pipeline.tracker, self.model_id, footage_s, result.classified, material
                    )
                self._measure(result.timings.inference_ms, t0)
                if fps_hint:
                    time.sleep(max(0.0, 1.0 / fps_hint - (time.perf_counter() - t0)))
                if self._stop.is_set():
                    break
            if key and not self._stop.is_set():
                self._commit([], self._state(key, frame_no))
        finally:
            if isinstance(frames, (VideoFileSource, LiveSource)):
                frames.close()
        return processed

    def _feed_dry_run(self, frame: Frame, detections: Detections) -> None:
        run = self.dry_run
        if run is None:
            return
        if run.expired:
            self.stop_dry_run()
            return
        run.feed(detections, frame.shape[1], frame.shape[0], self.pipeline.frame_index)

    def _maybe_swap_model(self, frame: Frame) -> None:
        """Keep a reference frame for testing new models; swap in a verified one between frames."""
        if self._reference is None:
            self._reference = frame.copy()
        new = self.updater.take_ready() if self.updater else None
        if new is not None:
            old = self.model_id
            self.pipeline.detector = new
            self.model_id = self._models_id()
            if self.reviews is not None:
                self.reviews.detector_id = new.info.model_id
            log.info("now counting with %s (was %s)", self.model_id, old)
        material = self.pipeline.material
        classifier = self.classifier_updater.take_ready() if self.classifier_updater else None
        if classifier is not None and material is not None:
            old = self.model_id
            material.classifier = classifier  # tracks keep the votes of the crops they had
            self.model_id = self._models_id()
            if self.reviews is not None:
                self.reviews.classifier_id = classifier.info.model_id
            log.info("now counting with %s (was %s)", self.model_id, old)

    def _measure(self, inference_ms: float, frame_start: float) -> None:
        """Moving averages: inference ms (what the model costs) and frames/s actually counted (wall clock
        between frames, so pacing or a slow camera shows)."""
        first = self.stats.frames == 0
        self.stats.inference_ms = inference_ms if first else 0.9 * self.stats.inference_ms + 0.1 * inference_ms
        if self._last_frame_start is not None:
            rate = 1.0 / max(frame_start - self._last_frame_start, 1e-6)
            self.stats.fps = rate if self.stats.fps == 0 else 0.9 * self.stats.fps + 0.1 * rate
        self._last_frame_start = frame_start
        self.stats.frames += 1

    def shutdown(self, flush_timeout_s: float = 10.0) -> int:
        """Flush the outbox to the server (up to ``flush_timeout_s``), stop threads; returns events left."""
        for updater in (self.updater, self.classifier_updater):
            if updater is not None:
                updater.stop()
        if self.uploader:
            self.uploader.stop(flush_timeout_s)
        if self.live_view:
            self.live_view.stop()
        left = self.outbox.depth()
        if left:
            log.warning("%d events stay in the outbox %s and will be sent on the next start", left, self.outbox.path)
        self.outbox.close()
        return left


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
