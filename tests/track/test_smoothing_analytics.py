"""One Euro filter against its published behaviour, and analytics on known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.analytics import (
    RepetitionCounter,
    angular_velocity,
    joint_angle,
    keypoint_distance,
    keypoint_speed,
)
from posekit.track import OneEuroConfig, OneEuroFilter, TrackSmoother


def test_a_constant_signal_stays_constant() -> None:
    f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.5))
    x = np.array([[3.0, -7.0], [100.0, 0.5]])
    for i in range(50):
        np.testing.assert_allclose(f(x, i / 30), x)


def test_a_step_is_followed_and_jitter_is_cut() -> None:
    t = np.arange(120) / 30
    step = np.where(t < 2, 0.0, 50.0)
    f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.1))
    out = np.array([f(np.array([v]), ti)[0] for v, ti in zip(step, t, strict=True)])
    assert out[59] == 0.0 and 0 < out[60] < 50  # smoothed, not jumped
    assert abs(out[-1] - 50) < 0.5  # and reaches the new level
    assert np.all(np.diff(out) >= -1e-9)  # monotone: no overshoot or ringing
    rng = np.random.default_rng(0)
    noisy = 10 + rng.normal(0, 2, 300)
    f = OneEuroFilter(OneEuroConfig(min_cutoff=0.5, beta=0.0))
    smooth = np.array([f(np.array([v]), i / 30)[0] for i, v in enumerate(noisy)])
    jitter = lambda s: np.sqrt(np.mean(np.diff(s) ** 2))  # noqa: E731
    assert jitter(smooth) < 0.3 * jitter(noisy)


def test_higher_beta_means_less_lag_on_a_moving_point() -> None:
    t = np.arange(90) / 30
    ramp = 300 * t  # 300 px/s
    lags = []
    for beta in (0.0, 0.05):
        f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=beta))
        out = np.array([f(np.array([v]), ti)[0] for v, ti in zip(ramp, t, strict=True)])
        lags.append(ramp[-1] - out[-1])
    assert lags[1] < 0.2 * lags[0]


def test_timestamps_not_frame_counts_set_the_smoothing() -> None:
    """The same samples at 60 fps are smoothed harder per sample than at 10 fps."""
    out = {}
    for fps in (10, 60):
        f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.0))
        f(np.array([0.0]), 0.0)
        out[fps] = f(np.array([10.0]), 1 / fps)[0]
    assert out[60] < out[10]


def test_missing_entries_pass_through_and_restart_after_a_gap() -> None:
    f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.0, reset_after=0.5))
    f(np.array([0.0, 0.0]), 0.0)
    y = f(np.array([np.nan, 10.0]), 0.1)
    assert np.isnan(y[0]) and 0 < y[1] < 10
    y = f(np.array([5.0, 10.0]), 0.2, valid=np.array([True, True]))
    assert 0 < y[0] < 5  # back after 0.2 s: smoothed from where it was
    f(np.array([5.0, 10.0]), 0.3, valid=np.array([False, True]))
    y = f(np.array([80.0, 10.0]), 1.2)  # 0.9 s later: a fresh start, no drag from 5
    assert y[0] == 80.0


def test_track_smoother_keeps_one_filter_per_track() -> None:
    s = TrackSmoother(OneEuroConfig(min_cutoff=1.0, beta=0.0), kpt_conf=0.5)
    kp = np.zeros((2, 3, 3))
    kp[..., 2] = 0.9
    kp[1, :, :2] = 100
    s(np.array([1, 2]), kp, 0.0)
    moved = kp.copy()
    moved[0, :, :2] = 10
    moved[1, 0, 2] = 0.1  # low confidence: passes through
    moved[1, 0, :2] = 500
    out = s(np.array([1, 2]), moved, 1 / 30)
    assert np.all((out[0, :, :2] > 0) & (out[0, :, :2] < 10))
    np.testing.assert_allclose(out[1, 1:, :2], 100)
    np.testing.assert_allclose(out[1, 0, :2], 500)
    s(np.array([1]), moved[:1], 2.0)  # track 2 gone for long: its filter is dropped
    assert set(s.filters) == {1}


def test_joint_angles_on_known_geometry() -> None:
    kp = np.array([[[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]],  # right angle
                   [[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]],  # straight
                   [[1.0, 0.0], [0.0, 0.0], [1.0, 1e-9]],  # folded
                   [[1.0, 0.0], [0.0, 0.0], [1.0, np.sqrt(3)]]])  # fmt: skip
    np.testing.assert_allclose(joint_angle(kp, (0, 1, 2)), [90, 180, 0, 60], atol=1e-6)
    low = np.concatenate([kp, np.full((4, 3, 1), 0.9)], -1)
    low[0, 2, 2] = 0.1
    a = joint_angle(low, (0, 1, 2), kpt_conf=0.5)
    assert np.isnan(a[0]) and a[1] == pytest.approx(180)
    # (T, N, K, 2): vectorised over frames and tracks
    assert joint_angle(np.broadcast_to(kp[0], (5, 3, 3, 2)), (0, 1, 2)).shape == (5, 3)


def test_velocities_speeds_and_distances_use_timestamps() -> None:
    t = np.array([0.0, 0.1, 0.3, 0.4])  # uneven: a dropped frame
    xy = np.zeros((4, 2, 2))
    xy[:, 0, 0] = 50 * t  # keypoint 0 moves at 50 px/s along x
    xy[:, 1] = [3.0, 4.0]
    np.testing.assert_allclose(keypoint_speed(xy, t)[:, 0], 50)
    np.testing.assert_allclose(keypoint_speed(xy, t)[:, 1], 0, atol=1e-9)
    np.testing.assert_allclose(keypoint_distance(xy[:1], 0, 1), [5.0])
    np.testing.assert_allclose(angular_velocity(20 * t, t), 20)


def test_repetition_counter_uses_hysteresis() -> None:
    signal = np.array([170, 150, 120, 95, 105, 99, 130, 165, 158, 162, 90, np.nan, 170, 100])
    c = RepetitionCounter(low=100, high=160)
    done = [c.update(v) for v in signal]
    assert c.count_total == 2 and np.nonzero(done)[0].tolist() == [7, 12]
    assert c.events == [7, 12]
    assert RepetitionCounter(low=100, high=160).count(signal) == 2
    noisy = 130 + 20 * np.sin(np.arange(100))  # stays between the thresholds
    assert RepetitionCounter(low=100, high=160).count(noisy) == 0
    with pytest.raises(ValueError, match="must be below"):
        RepetitionCounter(low=160, high=100)


def test_an_angle_naming_an_unknown_keypoint_is_one_line() -> None:
    from posekit.analytics import resolve_triple
    from posekit.schema import get_schema
    from posekit.utils.errors import UserError

    arm = get_schema("arm")
    assert resolve_triple(arm, ("shoulder", "elbow", "wrist")) == (1, 2, 3)
    with pytest.raises(UserError, match="'a' is not a keypoint of 'arm'"):
        resolve_triple(arm, ("a", "elbow", "wrist"))
    with pytest.raises(UserError, match="has 6 keypoints"):
        resolve_triple(arm, (0, 1, 60))
