"""3D events (`posekit.track3d/1`, what `posekit triangulate` writes) as the action rules read
them: the same columns as a tracked 2D event, with the floor in place of the image.

One axis of the calibration's world points up (`--up`, default z: Anipose's and Pose2Sim's
labs; a rig calibrated from the first camera has -y up). The other two, in the order x, y, z,
are the floor's coordinates: a rule's `x, y` (dwell zones, envelope boxes, speeds) are floor
coordinates in the calibration's unit, a point's height is its `z`, and the "box" is the
person's extent on the floor, with its extent in height beside it. Angles are measured in 3D
and a fall is the hips' height dropping by `drop` times the person's height. A point is seen
(confidence 1) where it was triangulated, missing (0) where not. The person's id is the
track id; 3D events have no source (it is "").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from posekit.utils.errors import UserError

SCHEMA_3D = "posekit.track3d/1"
UP_AXES = ("z", "-z", "y", "-y", "x", "-x")


def floor_and_up(up: str) -> tuple[int, int, int, float]:
    """(first floor axis, second floor axis, up axis, its sign) of `up` (e.g. "-y")."""
    if up not in UP_AXES:
        raise UserError(f"--up {up!r}: one of {', '.join(UP_AXES)}")
    axis = "xyz".index(up[-1])
    floor = [a for a in range(3) if a != axis]
    return floor[0], floor[1], axis, -1.0 if up.startswith("-") else 1.0


def as_track_event(event: dict[str, Any], up: str) -> dict[str, Any]:
    """A `posekit.track3d/1` event in the layout of a `posekit.track/1` one (see the module
    docstring): floor x, y and height z per keypoint, the floor box and the height range."""
    a, b, u, sign = floor_and_up(up)
    if event.get("timestamp") is None:
        raise UserError(
            f"3D event of frame {event.get('frame')}: no timestamp, which the rules "
            "need (posekit triangulate --fps gives one)"
        )
    names, xyz = [], []
    for k in event["keypoints"]:
        names.append(k["name"])
        xyz.append([np.nan if k.get(c) is None else float(k[c]) for c in "xyz"])
    p = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    floor_x, floor_y, height = p[:, a], p[:, b], sign * p[:, u]
    seen = np.isfinite(p).all(1)

    def extent(v: np.ndarray) -> tuple[float | None, float | None]:
        return (float(v[seen].min()), float(v[seen].max())) if seen.any() else (None, None)

    (x1, x2), (y1, y2), (h1, h2) = extent(floor_x), extent(floor_y), extent(height)
    keypoints = [
        {"name": n, "x": _or_none(fx), "y": _or_none(fy), "z": _or_none(h), "confidence": float(s)}
        for n, fx, fy, h, s in zip(names, floor_x, floor_y, height, seen, strict=True)
    ]
    return {
        "schema": SCHEMA_3D,
        "source": event.get("source", ""),
        "frame": event["frame"],
        "timestamp": event["timestamp"],
        "track_id": event["person_id"],
        "class": event.get("class", "person"),
        "box": [x1, y1, x2, y2],
        "height": [h1, h2],
        "keypoints": keypoints,
    }


def _or_none(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None
