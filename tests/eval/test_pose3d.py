"""3D pose metrics against what they must be: a pose moved by a similarity transform has
P-MPJPE 0 and the MPJPE of the move; a scaled pose has N-MPJPE 0; a constant offset has no
velocity error; missing joints are left out, never counted as 0."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posekit.eval.pose3d import pose3d_metrics, procrustes_align


def _poses(frames: int = 10, joints: int = 17, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 300, (frames, joints, 3))


def test_a_similarity_transform_has_no_procrustes_error() -> None:
    true = _poses()
    rotation = cv2.Rodrigues(np.array([0.3, -1.2, 0.5]))[0]
    pred = 1.7 * true @ rotation.T + [100.0, -50.0, 20.0]
    m = pose3d_metrics(pred, true)
    assert m.p_mpjpe == pytest.approx(0.0, abs=1e-9)
    assert m.mpjpe == pytest.approx(np.linalg.norm(pred - true, axis=-1).mean())
    np.testing.assert_allclose(procrustes_align(pred, true), true, atol=1e-9)


def test_a_reflection_is_not_undone() -> None:
    true = _poses()
    mirrored = true * [-1.0, 1.0, 1.0]
    assert pose3d_metrics(mirrored, true).p_mpjpe > 50.0


def test_a_scaled_pose_has_no_scale_normalised_error_and_an_offset_no_velocity_error() -> None:
    true = _poses()
    m = pose3d_metrics(0.8 * true, true)
    assert m.n_mpjpe == pytest.approx(0.0, abs=1e-9) and m.mpjpe > 0
    shifted = pose3d_metrics(true + [10.0, 0.0, 0.0], true)
    assert shifted.mpjpe == pytest.approx(10.0) and shifted.mpjve == pytest.approx(0.0, abs=1e-9)
    jitter = true.copy()
    jitter[::2] += [0.0, 6.0, 0.0]  # every other frame 6 mm off: each step 6 mm off
    assert pose3d_metrics(jitter, true).mpjve == pytest.approx(6.0)


def test_missing_joints_are_left_out() -> None:
    true = _poses()
    pred = true + [3.0, 4.0, 0.0]  # 5 mm everywhere
    pred[2, 5] = np.nan
    true[4] = np.nan  # a frame with nothing
    m = pose3d_metrics(pred, true)
    assert m.mpjpe == pytest.approx(5.0)
    assert m.poses == 9
    assert np.isnan(m.per_joint).sum() == 0 and m.per_joint[5] == pytest.approx(5.0)
    assert m.as_dict()["MPJPE"] == pytest.approx(5.0)
