"""Errors raised by the vision core; each says what failed, where, and what to do."""

from __future__ import annotations


class VisionError(Exception):
    """Base class of every error the vision core raises on purpose."""


class ModelError(VisionError):
    """A model file is missing, unreadable, or not an Ultralytics YOLO detect model in ONNX."""

    def __init__(self, path: str, problem: str, hint: str = "") -> None:
        self.path = path
        self.problem = problem
        self.hint = hint
        super().__init__(f"{path}: {problem}" + (f" ({hint})" if hint else ""))


class LineError(VisionError, ValueError):
    """A count line or zone is malformed (wrong number of values, outside 0-1, zero length)."""
