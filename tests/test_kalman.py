"""The per-coordinate Kalman filter equals the textbook 8×8 matrix form of SORT/ByteTrack."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vision import kalman

F = np.eye(8) + np.eye(8, k=4)
H = np.eye(4, 8)
POS, VEL = 1.0 / 20, 1.0 / 160


def matrix_filter(z0: np.ndarray, measurements: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """Reference: full-matrix initiate / predict / update; returns the final mean (8,) and covariance (8, 8)."""
    h = z0[3]
    std = [2 * POS * h, 2 * POS * h, 1e-2, 2 * POS * h, 10 * VEL * h, 10 * VEL * h, 1e-5, 10 * VEL * h]
    mean, cov = np.r_[z0, np.zeros(4)], np.diag(np.square(std))
    for z in measurements:
        h = mean[3]
        q = np.diag(np.square([POS * h, POS * h, 1e-2, POS * h, VEL * h, VEL * h, 1e-5, VEL * h]))
        mean, cov = F @ mean, F @ cov @ F.T + q
        if z is None:
            continue
        h = mean[3]
        s = H @ cov @ H.T + np.diag(np.square([POS * h, POS * h, 1e-1, POS * h]))
        gain = cov @ H.T @ np.linalg.inv(s)
        mean, cov = mean + gain @ (z - H @ mean), (np.eye(8) - gain @ H) @ cov
    return mean, cov


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_block_filter_matches_the_matrix_filter(seed: int, steps: int) -> None:
    rng = np.random.default_rng(seed)
    z0 = np.array([rng.uniform(0, 600), rng.uniform(0, 400), rng.uniform(0.3, 3), rng.uniform(10, 200)])
    zs: list[np.ndarray | None] = [
        None if rng.random() < 0.3 else z0 + rng.normal(0, 5, 4) * [1, 1, 0.01, 1] + [3 * k, 2 * k, 0, 0] for k in range(1, steps + 1)
    ]
    want_mean, want_cov = matrix_filter(z0, zs)
    state = kalman.initiate(z0[None, :])
    for z in zs:
        state = kalman.predict(state)
        if z is not None:
            state = kalman.update(state, z[None, :])
    np.testing.assert_allclose(np.r_[state.pos[0], state.vel[0]], want_mean, rtol=1e-9, atol=1e-9)
    idx = np.arange(4)
    np.testing.assert_allclose(state.pxx[0], want_cov[idx, idx], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(state.pxv[0], want_cov[idx, idx + 4], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(state.pvv[0], want_cov[idx + 4, idx + 4], rtol=1e-9, atol=1e-12)
    off_block = want_cov.copy()
    off_block[idx, idx] = off_block[idx, idx + 4] = off_block[idx + 4, idx] = off_block[idx + 4, idx + 4] = 0
    assert np.abs(off_block).max() < 1e-12  # the matrix form never couples two coordinates


def test_box_conversions_round_trip() -> None:
    boxes = np.array([[1, 2, 11, 22], [5, 5, 6, 9]], np.float32)
    np.testing.assert_allclose(kalman.xyxy_to_xyah(boxes), [[6, 12, 0.5, 20], [5.5, 7, 0.25, 4]])
    np.testing.assert_allclose(kalman.xyah_to_xyxy(kalman.xyxy_to_xyah(boxes)), boxes, atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_correcting_some_rows_equals_correcting_them_alone_and_leaves_the_rest_bit_for_bit(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes = rng.uniform(0, 300, (n, 2))
    state = kalman.predict(kalman.predict(kalman.initiate(np.c_[boxes, rng.uniform(0.3, 3, n), rng.uniform(10, 100, n)])))
    rows = np.flatnonzero(rng.random(n) < 0.5).astype(np.int64)
    z = state.pos[rows] + rng.normal(0, 3, (len(rows), 4))
    got = kalman.update(state, z, rows)
    alone = kalman.update(state.take(rows), z)
    others = np.setdiff1d(np.arange(n), rows)
    for whole, part, before in zip(got.arrays(), alone.arrays(), state.arrays(), strict=True):
        assert np.array_equal(whole[rows], part)
        assert np.array_equal(whole[others], before[others])
