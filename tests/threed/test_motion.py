"""Synthetic 3D motion for lifting: bones keep their length, joints stay within their
limits, the feet stay on the floor (but for a fall), and a filmed clip's exact pixels are
the camera's projection of its points, with the detector's noise and drops on top."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.analytics import joint_angle_3d
from posekit.schema import get_schema
from posekit.threed.motion import MOTIONS, film, generate_clip, supports
from posekit.utils.errors import UserError

BODY25B = get_schema("body25b")


@pytest.mark.parametrize("motion", MOTIONS)
def test_bones_keep_their_length_and_joints_their_limits(motion: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        clip = generate_clip(BODY25B, 60, rng, motion=motion)
        p = clip.points
        a, b = np.array(BODY25B.skeleton).T
        lengths = np.linalg.norm(p[:, a] - p[:, b], axis=-1)
        assert (lengths.std(0) < 1e-9).all()
        knee = 180 - joint_angle_3d(
            p, tuple(BODY25B.index(n) for n in ("left_hip", "left_knee", "left_ankle"))
        )
        assert knee.min() >= -1e-6 and knee.max() <= 150 + 1e-6
        assert p[..., 2].min() == pytest.approx(0.0, abs=1e-9)  # something touches the floor
        assert 1.0 < np.ptp(p[0, :, 2]) < 2.0 or motion in ("squat", "fall")


def test_a_walk_moves_and_a_fall_ends_low() -> None:
    rng = np.random.default_rng(0)
    walk = generate_clip(BODY25B, 60, rng, motion="walk").points
    assert np.linalg.norm(walk[-1, 0, :2] - walk[0, 0, :2]) > 1.0  # 2 s at 0.9-1.5 m/s
    fall = generate_clip(BODY25B, 120, rng, motion="fall").points
    assert fall[-1, BODY25B.index("nose"), 2] < 0.5 < fall[0, BODY25B.index("nose"), 2]


def test_filming_projects_the_points_and_adds_a_detectors_error() -> None:
    rng = np.random.default_rng(1)
    clip = generate_clip(get_schema("coco17"), 60, rng, motion="walk")
    seen = film(clip, rng, noise=(0.01, 0.01), gross=0.0, dropped=0.1)
    k = seen.camera.matrix
    projected = seen.points[..., :2] / seen.points[..., 2:] * [k[0, 0], k[1, 1]] + k[:2, 2]
    np.testing.assert_allclose(projected, seen.pixels, atol=1e-6)
    assert (seen.points[..., 2] > 1.0).all()  # in front of the camera
    dropped = np.isnan(seen.detected[..., 0])
    assert 0.05 < dropped.mean() < 0.15 and (seen.detected[dropped, 2] == 0).all()
    height = np.ptp(seen.pixels[..., 1], axis=1)[:, None]
    error = np.linalg.norm(seen.detected[..., :2] - seen.pixels, axis=-1) / height
    assert 0.008 < np.nanmedian(error) < 0.016  # sqrt(2 ln 2) sigma, sigma 1 % of the height


def test_a_schema_without_a_template_is_one_line() -> None:
    assert supports(BODY25B) and not supports(get_schema("arm"))
    with pytest.raises(UserError, match=r"schema arm: no 3D template for \['base'"):
        generate_clip(get_schema("arm"), 10, np.random.default_rng(0))
