"""Constant-velocity Kalman filter over box state ``(cx, cy, aspect, height)`` as in SORT/ByteTrack."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]

_DT = np.eye(8) + np.eye(8, k=4)  # x' = x + v per frame
_H = np.eye(4, 8)
_POS_STD = 1.0 / 20
_VEL_STD = 1.0 / 160


def xyxy_to_xyah(box: npt.NDArray[np.float32]) -> Vector:
    """(4,) xyxy → (cx, cy, w/h, h)."""
    w, h = float(box[2] - box[0]), float(box[3] - box[1])
    return np.array([box[0] + w / 2, box[1] + h / 2, w / max(h, 1e-6), h], np.float64)


def xyah_to_xyxy(state: Vector) -> npt.NDArray[np.float32]:
    """(cx, cy, a, h, ...) → (4,) xyxy."""
    cx, cy, a, h = state[:4]
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


def initiate(measurement: Vector) -> tuple[Vector, Matrix]:
    """Mean (8,) and covariance (8, 8) of a new track from one xyah measurement."""
    h = measurement[3]
    std = np.array(
        [2 * _POS_STD * h, 2 * _POS_STD * h, 1e-2, 2 * _POS_STD * h, 10 * _VEL_STD * h, 10 * _VEL_STD * h, 1e-5, 10 * _VEL_STD * h]
    )
    return np.r_[measurement, np.zeros(4)], np.diag(std**2)


def predict(mean: Vector, cov: Matrix) -> tuple[Vector, Matrix]:
    """One frame ahead."""
    h = mean[3]
    q = np.diag(np.array([_POS_STD * h, _POS_STD * h, 1e-2, _POS_STD * h, _VEL_STD * h, _VEL_STD * h, 1e-5, _VEL_STD * h]) ** 2)
    return _DT @ mean, _DT @ cov @ _DT.T + q


def predict_many(means: Matrix, covs: npt.NDArray[np.float64]) -> tuple[Matrix, npt.NDArray[np.float64]]:
    """``predict`` for N tracks at once: means (N, 8), covariances (N, 8, 8)."""
    h = means[:, 3:4]
    unit = np.array([_POS_STD, _POS_STD, 0.0, _POS_STD, _VEL_STD, _VEL_STD, 0.0, _VEL_STD])
    fixed = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
    std = h * unit + fixed
    q = np.zeros_like(covs)
    idx = np.arange(8)
    q[:, idx, idx] = std**2
    return means @ _DT.T, _DT @ covs @ _DT.T + q


def update(mean: Vector, cov: Matrix, measurement: Vector) -> tuple[Vector, Matrix]:
    """Correct the state with an xyah measurement."""
    h = mean[3]
    r = np.diag(np.array([_POS_STD * h, _POS_STD * h, 1e-1, _POS_STD * h]) ** 2)
    s = _H @ cov @ _H.T + r
    gain = np.linalg.solve(s, _H @ cov).T
    mean = mean + gain @ (measurement - _H @ mean)
    cov = cov - gain @ s @ gain.T
    return mean, cov
