"""farz vision core: pure per-frame detection, material classification, tracking and counting.

The bottom floor: imports numpy, onnxruntime and opencv only (no torch, camera, web, HTTP or database).
"""

from vision.annotate import Annotator
from vision.classifier import Classifier, ClassifierInfo, crop_square
from vision.counter import CountEvent, LineCounter, LineSpec, ZoneCounter
from vision.detections import Detections
from vision.detector import ITEM_CLASSES, DetectorSettings, ModelInfo, OnnxDetector
from vision.errors import LineError, ModelError, VisionError
from vision.geometry import Letterbox, box_iou, letterbox, nms
from vision.input_size import InputSizeChange, InputSizer, InputSizeRule
from vision.material import Classified, MaterialSettings, MaterialVoter
from vision.pipeline import FrameResult, Pipeline, StageTimings
from vision.regions import IgnoreZones, PrivacyMask
from vision.tracker import Tracker, TrackerSettings
from vision.turn import BeltTurn

__all__ = [
    "ITEM_CLASSES",
    "Annotator",
    "BeltTurn",
    "Classified",
    "Classifier",
    "ClassifierInfo",
    "CountEvent",
    "Detections",
    "DetectorSettings",
    "FrameResult",
    "IgnoreZones",
    "InputSizeChange",
    "InputSizeRule",
    "InputSizer",
    "Letterbox",
    "LineCounter",
    "LineError",
    "LineSpec",
    "MaterialSettings",
    "MaterialVoter",
    "ModelError",
    "ModelInfo",
    "OnnxDetector",
    "Pipeline",
    "PrivacyMask",
    "StageTimings",
    "Tracker",
    "TrackerSettings",
    "VisionError",
    "ZoneCounter",
    "box_iou",
    "crop_square",
    "letterbox",
    "nms",
]
