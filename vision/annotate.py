"""``Annotator``: draws boxes, track ids, classes, count lines and running totals on a frame copy."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import numpy.typing as npt

from vision.counter import LineSpec
from vision.detections import Detections

PALETTE = ((66, 135, 245), (60, 180, 75), (200, 200, 200), (245, 215, 66), (48, 48, 230), (180, 30, 145), (0, 140, 255), (128, 128, 0))


class Annotator:
    """Stateless drawing helper; ``draw`` returns a new annotated BGR frame."""

    def __init__(
        self, names: tuple[str, ...], lines: tuple[LineSpec, ...] = (), zones: tuple[tuple[tuple[float, float], ...], ...] = ()
    ) -> None:
        self.names = names
        self.lines = lines
        self.zones = zones

    def draw(
        self, frame: npt.NDArray[np.uint8], detections: Detections, totals: Mapping[tuple[str, str], int] | None = None
    ) -> npt.NDArray[np.uint8]:
        """Annotated copy of ``frame`` (H, W, 3): boxes with ``#id class conf``, lines, zones, totals."""
        out = frame.copy()
        h, w = out.shape[:2]
        scale = max(0.4, min(w, h) / 720)
        thick = max(1, round(2 * scale))
        for z in self.zones:
            pts = (np.asarray(z) * [w, h]).astype(np.int32)
            cv2.polylines(out, [pts], True, (0, 255, 255), thick)
        for line in self.lines:
            p1 = (int(line.x1 * w), int(line.y1 * h))
            p2 = (int(line.x2 * w), int(line.y2 * h))
            cv2.line(out, p1, p2, (0, 255, 255), thick + 1)
            cv2.putText(out, line.name, (p1[0] + 4, p1[1] + int(16 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 255, 255), thick)
        for i in range(len(detections)):
            x1, y1, x2, y2 = (int(v) for v in detections.xyxy[i])
            cid = int(detections.class_id[i])
            colour = PALETTE[cid % len(PALETTE)]
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
            tid = "" if detections.tracker_id is None else f"#{int(detections.tracker_id[i])} "
            name = self.names[cid] if 0 <= cid < len(self.names) else str(cid)
            label = f"{tid}{name} {float(detections.confidence[i]):.2f}"
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)
            cv2.rectangle(out, (x1, max(0, y1 - th - 6)), (x1 + tw + 4, y1), colour, -1)
            cv2.putText(out, label, (x1 + 2, max(th, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 0, 0), 1)
        if totals:
            rows = [f"{d} {c}: {n}" for (d, c), n in sorted(totals.items())]
            pad = int(18 * scale)
            cv2.rectangle(out, (0, 0), (int(170 * scale), pad * len(rows) + 8), (0, 0, 0), -1)
            for k, row in enumerate(rows):
                cv2.putText(out, row, (6, pad * (k + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (255, 255, 255), 1)
        return out
