"""Constant-velocity Kalman filter over box state ``(cx, cy, aspect, height)`` as in SORT/ByteTrack,
for N tracks at once.

With SORT's model — every coordinate moves on its own (x' = x + v), diagonal process and measurement
noise, and the position measured directly — the 8×8 covariance never couples two coordinates: it is four
independent 2×2 blocks (position, velocity) per track. So the filter keeps only those blocks, as three
(N, 4) arrays ``pxx, pxv, pvv``, and every step is a handful of elementwise operations. This is the same
filter as the textbook matrix form, not an approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vision.geometry import cxcywh_to_xyxy, xyxy_to_cxcywh

Matrix = npt.NDArray[np.float64]

_POS_STD = 1.0 / 20
_VEL_STD = 1.0 / 160
# Noise standard deviations per coordinate (cx, cy, aspect, height): a multiple of the box height plus a
# fixed part (the aspect ratio's noise does not scale with height).
_INIT_POS = (np.array([2 * _POS_STD, 2 * _POS_STD, 0.0, 2 * _POS_STD]), np.array([0.0, 0.0, 1e-2, 0.0]))
_INIT_VEL = (np.array([10 * _VEL_STD, 10 * _VEL_STD, 0.0, 10 * _VEL_STD]), np.array([0.0, 0.0, 1e-5, 0.0]))
_PROC_POS = (np.array([_POS_STD, _POS_STD, 0.0, _POS_STD]), np.array([0.0, 0.0, 1e-2, 0.0]))
_PROC_VEL = (np.array([_VEL_STD, _VEL_STD, 0.0, _VEL_STD]), np.array([0.0, 0.0, 1e-5, 0.0]))
_MEAS = (np.array([_POS_STD, _POS_STD, 0.0, _POS_STD]), np.array([0.0, 0.0, 1e-1, 0.0]))


def _variance(height: Matrix, noise: tuple[Matrix, Matrix]) -> Matrix:
    """(N, 4) variances: (scale * height + fixed) ** 2 for heights (N, 1)."""
    std = height * noise[0] + noise[1]
    return np.asarray(std * std)


@dataclass
class KalmanState:
    """N tracks: ``pos`` (N, 4) = (cx, cy, aspect, height), ``vel`` (N, 4) per frame, and the covariance
    blocks ``pxx``, ``pxv``, ``pvv`` (N, 4) of each coordinate's (position, velocity) pair."""

    pos: Matrix
    vel: Matrix
    pxx: Matrix
    pxv: Matrix
    pvv: Matrix

    @staticmethod
    def empty() -> KalmanState:
        return KalmanState(*(np.zeros((0, 4)) for _ in range(5)))

    def __len__(self) -> int:
        return len(self.pos)

    def take(self, rows: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> KalmanState:
        """The tracks at ``rows`` (a mask or indices)."""
        return KalmanState(self.pos[rows], self.vel[rows], self.pxx[rows], self.pxv[rows], self.pvv[rows])

    def join(self, other: KalmanState) -> KalmanState:
        """These tracks followed by ``other``'s."""
        return KalmanState(*(np.concatenate([a, b]) for a, b in zip(self.arrays(), other.arrays(), strict=True)))

    def arrays(self) -> tuple[Matrix, Matrix, Matrix, Matrix, Matrix]:
        return self.pos, self.vel, self.pxx, self.pxv, self.pvv


def initiate(measurements: Matrix) -> KalmanState:
    """New tracks from N xyah measurements (N, 4), at rest."""
    h = measurements[:, 3:4]
    zeros = np.zeros_like(measurements)
    return KalmanState(measurements.astype(np.float64), zeros, _variance(h, _INIT_POS), zeros.copy(), _variance(h, _INIT_VEL))


def predict(state: KalmanState) -> KalmanState:
    """Every track one frame ahead (the noise scales with the height before the step)."""
    h = state.pos[:, 3:4]
    pxx = state.pxx + 2 * state.pxv + state.pvv + _variance(h, _PROC_POS)
    pxv = state.pxv + state.pvv
    pvv = state.pvv + _variance(h, _PROC_VEL)
    return KalmanState(state.pos + state.vel, state.vel, pxx, pxv, pvv)


def update(state: KalmanState, measurements: Matrix, rows: npt.NDArray[np.int64] | None = None) -> KalmanState:
    """Correct tracks with their xyah measurements (R, 4): every track (R = N), or only the tracks at
    ``rows`` (R indices; the others keep their state, bit for bit)."""
    s = state.pxx + _variance(state.pos[:, 3:4], _MEAS)
    gain_x, gain_v = state.pxx / s, state.pxv / s
    if rows is None:
        innovation = measurements - state.pos
    else:
        innovation = np.zeros_like(state.pos)
        innovation[rows] = measurements - state.pos[rows]
        measured = np.zeros((len(state), 1))
        measured[rows] = 1.0
        gain_x *= measured
        gain_v *= measured
    return KalmanState(
        state.pos + gain_x * innovation,
        state.vel + gain_v * innovation,
        (1 - gain_x) * state.pxx,
        (1 - gain_x) * state.pxv,
        state.pvv - gain_v * state.pxv,
    )


def xyah_to_xyxy(pos: Matrix) -> npt.NDArray[np.float32]:
    """(N, 4) (cx, cy, w/h, h) → (N, 4) xyxy."""
    cxcywh = pos.copy()
    cxcywh[:, 2] *= cxcywh[:, 3]
    return np.asarray(cxcywh_to_xyxy(cxcywh), np.float32)


def xyxy_to_xyah(boxes: npt.NDArray[np.float32]) -> Matrix:
    """(N, 4) xyxy → (N, 4) (cx, cy, w/h, h)."""
    out: Matrix = np.asarray(xyxy_to_cxcywh(np.asarray(boxes, np.float64)), np.float64)
    out[:, 2] /= np.maximum(out[:, 3], 1e-6)
    return out
