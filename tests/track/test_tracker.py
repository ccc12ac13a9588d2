"""The tracker on hand-made scenarios: crossing paths, a dropout, a new object, classes."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.track import Tracker, TrackerConfig
from posekit.track.kalman import KalmanBoxFilter, xyah_to_xyxy, xyxy_to_xyah


def _box(cx: float, cy: float, w: float = 40, h: float = 80) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _kp(box: list[float], k: int = 5, flip: bool = False) -> np.ndarray:
    """Keypoints spread over the box (mirrored with `flip`), confidence 0.9."""
    x1, y1, x2, y2 = box
    xs = np.linspace(x1 + 5, x2 - 5, k)
    if flip:
        xs = xs[::-1]
    ys = np.linspace(y1 + 5, y2 - 5, k)
    return np.stack([xs, ys, np.full(k, 0.9)], 1)


def _run(
    tracker: Tracker, frames: list[list[list[float]]], scores=None, kps=None
) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    out = []
    for i, boxes in enumerate(frames):
        s = np.full(len(boxes), 0.9) if scores is None else np.asarray(scores[i])
        k = None if kps is None else np.asarray(kps[i]).reshape(len(boxes), -1, 3)
        out.append(tracker.update(np.asarray(boxes).reshape(-1, 4), s, None, k))
    return out


def test_two_objects_crossing_keep_their_ids() -> None:
    frames = []
    for t in range(40):
        a = _box(50 + 5 * t, 100)  # left -> right
        b = _box(250 - 5 * t, 104)  # right -> left, crossing at t = 20
        frames.append([a, b] if t % 2 else [b, a])  # detection order must not matter
    ids = _run(Tracker(TrackerConfig(min_hits=1)), frames)
    # identity of the object moving right, frame by frame
    right = [row[0] if t % 2 else row[1] for t, row in enumerate(ids)]
    left = [row[1] if t % 2 else row[0] for t, row in enumerate(ids)]
    assert len(set(right)) == 1 and len(set(left)) == 1 and right[0] != left[0]


def test_keypoints_separate_overlapping_boxes_that_iou_alone_would_swap() -> None:
    """Two people in the same place with different poses: OKS decides who is who."""
    box = _box(100, 100)
    frames, kps = [], []
    for t in range(6):
        frames.append([box, box])
        pair = [_kp(box, flip=False), _kp(box, flip=True)]
        kps.append(pair if t % 2 == 0 else pair[::-1])
    ids = _run(Tracker(TrackerConfig(min_hits=1, oks_weight=0.9)), frames, kps=kps)
    for t, row in enumerate(ids):
        unflipped = row[0] if t % 2 == 0 else row[1]
        assert unflipped == ids[0][0]


def test_a_one_frame_dropout_keeps_the_id() -> None:
    frames = [[_box(50 + 4 * t, 100)] for t in range(20)]
    frames[10] = []  # missed detection
    ids = _run(Tracker(TrackerConfig(min_hits=1)), frames)
    assert {int(r[0]) for r in ids if len(r)} == {1}


def test_a_low_score_detection_continues_a_track_but_never_starts_one() -> None:
    frames = [[_box(50 + 4 * t, 100)] for t in range(10)]
    scores = [[0.9]] * 5 + [[0.3]] * 5  # occluded: the score drops
    ids = _run(Tracker(TrackerConfig(min_hits=1)), frames, scores=scores)
    assert [int(r[0]) for r in ids] == [1] * 10
    ids = _run(Tracker(TrackerConfig(min_hits=1)), frames, scores=[[0.3]] * 10)
    assert [int(r[0]) for r in ids] == [-1] * 10


def test_a_new_object_entering_gets_a_new_id_after_min_hits() -> None:
    frames = [[_box(50 + 4 * t, 100)] + ([_box(400, 300)] if t >= 5 else []) for t in range(12)]
    ids = _run(Tracker(TrackerConfig(min_hits=3)), frames)
    assert [int(r[0]) for r in ids] == [1] * 12
    # the newcomer: tentative (-1) for its first two sightings, then id 2 for good
    assert [int(r[1]) for r in ids[5:]] == [-1, -1, 2, 2, 2, 2, 2]


def test_lost_tracks_are_forgotten_after_the_buffer() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1, track_buffer=3))
    _run(tracker, [[_box(50, 100)]] * 3 + [[]] * 5)
    assert len(tracker.ids) == 0
    ids = _run(tracker, [[_box(50, 100)]])
    assert ids[0][0] == 2  # a new id: the old track is gone


def test_classes_never_match_each_other() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    b = np.array([_box(50, 100)])
    a = tracker.update(b, np.array([0.9]), np.array([0]))
    c = tracker.update(b, np.array([0.9]), np.array([1]))
    assert a[0] == 1 and c[0] == 2


def test_kalman_round_trip_and_constant_velocity() -> None:
    boxes = np.array([_box(10, 20), _box(300, 40, 10, 30)])
    np.testing.assert_allclose(xyah_to_xyxy(xyxy_to_xyah(boxes)), boxes)
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(xyxy_to_xyah(boxes[:1]))
    for t in range(1, 30):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, xyxy_to_xyah(np.array([_box(10 + 3 * t, 20)])))
    assert mean[0, 4] == pytest.approx(3.0, abs=0.05)  # learnt the velocity
    mean, _ = kf.predict(mean, cov)
    assert mean[0, 0] == pytest.approx(10 + 3 * 30, abs=0.5)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="one row per detection"):
        Tracker().update(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="low_thresh"):
        TrackerConfig(low_thresh=0.6, high_thresh=0.5)
