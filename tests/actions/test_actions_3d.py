"""The action rules on 3D events (`posekit.track3d/1`, what `posekit triangulate` writes):
synthetic people in 3D whose motion is known squat, fall, walk and stand, read on the floor of
their world whichever axis points up."""

from __future__ import annotations

from typing import Any

import jsonschema
import numpy as np
import pytest

from posekit.actions import detect_actions
from posekit.actions.events3d import as_track_event, floor_and_up
from posekit.actions.rules import Dwell, Envelope, Fall, Repetitions, Speed
from posekit.schema import get_schema
from posekit.threed.motion import generate_clip
from posekit.threed.outputs import track3d_schema
from posekit.utils.errors import UserError

COCO = get_schema("coco17")
#: in metres and degrees: the knee's angle in 3D, a fall by 35 % of the height, a walk faster
#: than 0.6 m/s on the floor, two seconds in a floor zone, a wrist leaving a floor box
RULES = (
    Repetitions(name="squat", angle=("left_hip", "left_knee", "left_ankle"), low=100, high=160),
    Fall(name="fall"),
    Speed(name="walk", threshold=0.6),
    Dwell(name="zone", zone=((-5, -5), (5, -5), (5, 5), (-5, 5)), seconds=2.0),
    Envelope(name="reach", keypoints=("left_wrist",), box=(-8, -8, 8, 8)),
)


def events3d(points: np.ndarray, person: int, *, drop: tuple[int, int] | None = None) -> list:
    """`posekit.track3d/1` events of one person's (T, K, 3) world points (30 frames/s);
    `drop` (frame, keypoint): that point missing (null), as triangulation leaves it."""
    out = []
    for f, frame in enumerate(points):
        keypoints = [
            {"name": n, "x": float(x), "y": float(y), "z": float(z), "error": 0.5, "cameras": []}
            for n, (x, y, z) in zip(COCO.keypoints, frame, strict=True)
        ]
        if drop is not None and drop[0] == f:
            keypoints[drop[1]].update(x=None, y=None, z=None, error=None)
        out.append(
            {
                "schema": "posekit.track3d/1",
                "frame": f,
                "timestamp": f / 30,
                "person_id": person,
                "class": "person",
                "unit": "m",
                "keypoints": keypoints,
                "views": {},
            }
        )
    return out


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        m: generate_clip(COCO, 300, rng, motion=m).points
        for m in ("squat", "fall", "walk", "stand")
    }


def _by_rule(actions: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for a in actions:
        out.setdefault(a["rule"], []).append(a)
    return out


def test_each_motion_gives_its_actions_in_3d(clips: dict[str, np.ndarray]) -> None:
    events = [e for i, m in enumerate(clips, 1) for e in events3d(clips[m], i)]
    for e in events[:3]:
        jsonschema.validate(e, track3d_schema())
    found = {
        m: _by_rule([a for a in detect_actions(events, RULES) if a["track_id"] == i])
        for i, m in enumerate(clips, 1)
    }
    assert [a["count"] for a in found["squat"]["squat"]] == [1, 2, 3, 4]  # 4 squats in 10 s
    assert "fall" in found["fall"] and all(
        "fall" not in found[m] for m in ("squat", "walk", "stand")
    )
    assert "walk" in found["walk"] and "walk" not in found["stand"] and "walk" not in found["squat"]
    assert "squat" not in found["walk"] and "squat" not in found["stand"]
    assert all(a["source"] == "" for a in found["fall"]["fall"])
    fall = found["fall"]["fall"][0]
    heights = clips["fall"][..., [11, 12], 2].mean(-1)
    assert heights[fall["end_frame"]] < 0.5 * heights[0]  # the hips are down by then


def test_the_up_axis_decides_the_floor(clips: dict[str, np.ndarray]) -> None:
    """The same people in a world whose -y points up (as a rig calibrated from its first
    camera): the same actions with `up="-y"`, other ones (no fall) with the default z."""
    p = clips["fall"]
    turned = np.stack([p[..., 0], -p[..., 2], p[..., 1]], -1)  # x, y, z -> x, -z, y
    want = detect_actions(events3d(p, 1), RULES)
    assert detect_actions(events3d(turned, 1), RULES, up="-y") == want
    assert "fall" not in _by_rule(detect_actions(events3d(turned, 1), RULES))
    assert floor_and_up("-y") == (0, 2, 1, -1.0)
    with pytest.raises(UserError, match="--up 'w'"):
        floor_and_up("w")
    with pytest.raises(UserError, match=r"frame 0: no timestamp, .* --fps"):
        detect_actions([dict(events3d(p, 1)[0], timestamp=None)], RULES)


def test_a_missing_point_is_missing_not_zero(clips: dict[str, np.ndarray]) -> None:
    e = as_track_event(events3d(clips["stand"], 1, drop=(0, 0))[0], "z")
    assert e["keypoints"][0] == {"name": "nose", "x": None, "y": None, "z": None, "confidence": 0.0}
    assert e["keypoints"][1]["confidence"] == 1.0 and e["track_id"] == 1
    z = clips["stand"][0, 1:, 2]
    assert e["height"] == [pytest.approx(z.min()), pytest.approx(z.max())]
