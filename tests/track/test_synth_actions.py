"""Rendered action clips: the body does what the clip says (knee angles, feet on the floor,
a fall's drop), the rules find exactly the clip's actions on its true keypoints, and the
training frames form a valid single-subject dataset."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.actions import detect_actions
from posekit.actions.rules import Fall, Repetitions
from posekit.data import load_splits
from posekit.data.synth.figures import sample_person
from posekit.track.synth_actions import (
    BOTTOM_KNEE,
    STAND_KNEE,
    ActionClipConfig,
    action_clip,
    action_times,
    pose_at,
    random_clip,
    write_action_dataset,
)
from posekit.track.synth_motion import events_of
from posekit.utils.errors import UserError

RULES = (
    Repetitions(name="squat", angle=("left_hip", "left_knee", "left_ankle"), low=100, high=160),
    Fall(name="fall"),
)


def keypoints(cfg: ActionClipConfig) -> list[np.ndarray]:
    """Per frame, the clip's person's (17, 3) keypoints as the renderer places them (without
    drawing: the same `sample_person` call)."""
    out = []
    for f in range(cfg.frames):
        p = pose_at(cfg, f / cfg.fps)
        fig = sample_person(np.random.default_rng([cfg.seed, 0xF16]), cfg.person_height,
                            p.pelvis, legs=p.legs, tilt=p.tilt)  # fmt: skip
        kp = np.zeros((17, 3))
        kp[:, :2] = fig.keypoints
        kp[:, 2] = np.where(fig.labelled, 0.9, 0.0)
        kp[~fig.labelled, :2] = 0.0  # as COCO (and the renderer's truth) leave them
        out.append(kp)
    return out


def knee_angle(kp: np.ndarray) -> float:
    a, b, c = kp[11, :2], kp[13, :2], kp[15, :2]
    u, v = a - b, c - b
    return float(np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))))


@pytest.mark.parametrize("facing", [1, -1])
def test_squat_bends_the_knees_with_the_feet_on_the_floor(facing: int) -> None:
    cfg = ActionClipConfig("squat", seconds=6.0, count=2, start=1.0, period=2.0, facing=facing)
    kps = keypoints(cfg)
    angles = np.array([knee_angle(k) for k in kps])
    truth = np.array([pose_at(cfg, f / cfg.fps).knee_angle for f in range(cfg.frames)])
    np.testing.assert_allclose(angles, truth, atol=1e-6)
    assert angles.min() == pytest.approx(BOTTOM_KNEE, abs=0.5)
    assert angles[0] == pytest.approx(STAND_KNEE)
    ankles = np.stack([k[15:17, :2] for k in kps])
    assert np.ptp(ankles, axis=0).max() < 1e-6  # the feet never move
    assert ankles[0, :, 1].max() == pytest.approx(cfg.floor, abs=1e-6)


def test_rules_find_exactly_the_clips_actions_on_true_keypoints() -> None:
    cases = {
        "squat": ActionClipConfig("squat", seconds=9.0, count=3, start=1.0, period=2.0),
        "fall": ActionClipConfig("fall", seconds=5.0, start=1.5, duration=0.5, facing=-1),
        "sit": ActionClipConfig("sit", seconds=8.0, start=1.0, duration=4.0),
        "walk": ActionClipConfig("walk", seconds=6.0),
    }
    for name, cfg in cases.items():
        actions = detect_actions(events_of({1: keypoints(cfg)}), RULES)
        kinds = [a["rule"] for a in actions]
        truth = action_times(cfg)
        if name == "squat":
            assert kinds == ["squat"] * 3
            ends = [a["end_time"] for a in actions]
            np.testing.assert_allclose(ends, truth, atol=0.6)
        elif name == "fall":
            assert kinds == ["fall"]
            assert truth[0] <= actions[0]["end_time"] <= truth[0] + 2.5
        else:
            assert kinds == [], name  # slow sitting and walking are no actions


def test_random_clip_draws_the_duration_of_the_fixed_action() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert random_clip(rng, seed=1, action="fall").duration <= 0.7
        assert random_clip(rng, seed=1, action="sit").duration >= 3.0
    assert random_clip(rng, seed=1, action="fall", duration=2.0).duration == 2.0
    with pytest.raises(UserError, match="not one of"):
        ActionClipConfig("jump")


def test_rendered_truth_matches_the_pose() -> None:
    cfg = ActionClipConfig("squat", seconds=0.2, count=1, start=0.0, period=0.4)
    rendered = [t for _, t in action_clip(cfg)]
    posed = keypoints(cfg)
    assert len(rendered) == cfg.frames == 6
    for truth, kp in zip(rendered, posed, strict=True):
        assert truth.ids.tolist() == [1]
        seen = truth.instances.keypoints[0, :, 2] > 0
        assert seen.sum() >= 14
        np.testing.assert_allclose(truth.instances.keypoints[0, seen, :2], kp[seen, :2])


def test_action_dataset_is_one_person_per_frame(tmp_path) -> None:
    out = write_action_dataset(tmp_path / "frames", 6, seed=3, val=0.0)
    ds = load_splits(out)["train"]
    assert len(ds.images) == 6
    assert sorted(a.image_id for a in ds.annotations) == [im.id for im in ds.images]
    again = write_action_dataset(tmp_path / "again", 6, seed=3, val=0.0)
    a, b = (load_splits(p)["train"].annotations for p in (out, again))
    np.testing.assert_array_equal(a[2].keypoints, b[2].keypoints)  # (seed, i) decides image i


def test_event_boxes_ignore_unlabelled_keypoints() -> None:
    """A figure turned away has no face labels, left at (0, 0): its box (which the fall rule
    measures drops against) must not stretch to the image corner."""
    from posekit.track.synth_motion import figure, results

    kp = figure((400.0, 300.0), 300.0, 175.0)
    kp[:3] = 0.0  # nose and eyes unlabelled, as COCO writes them
    box = results(0, kp[None], [1], "cam.mp4").boxes.xyxy[0]
    labelled = kp[3:, :2]
    np.testing.assert_allclose(box, [*(labelled.min(0) - 5), *(labelled.max(0) + 5)], atol=1e-4)
