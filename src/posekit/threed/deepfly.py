"""DeepFly3D's result files (`df3d_result*.pkl`, `pose_result*.pkl`): seven calibrated
cameras around a tethered fly, 38 keypoints (19 per side: three legs of five joints, an
antenna, three abdominal stripes), its 2D detections and its 3D.

The pickle is read with NumPy data admitted and nothing else (`load_numpy_pickle`). Each
camera stores all 38 points, though it sees only some: cameras 0-2 the left side (points
0-18), 4-6 the right (19-37), and camera 3, in front, both sides' front and middle legs from
the femur down and the antennae. Cameras 2 and 4 do not see the stripes. The points a camera
does not see hold whatever the network guessed (camera 3's are mostly far off), so they are
left out by that rule, as DeepFly3D's `camera_see_joint` does; a point at (0, 0) is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posekit.schema import KeypointSchema
from posekit.threed.cameras import Camera, CameraRig
from posekit.utils.errors import UserError
from posekit.utils.serialization import load_numpy_pickle

#: DeepFly3D's images: 960 x 480 pixels
IMAGE_SIZE = (960, 480)
CAMERAS = 7
LEGS = ("front", "middle", "hind")
JOINTS = ("body_coxa", "coxa_femur", "femur_tibia", "tibia_tarsus", "tarsus_tip")


def fly38() -> KeypointSchema:
    """DeepFly3D's 38 keypoints, in its order: per side (left, then right) the front, middle
    and hind legs from the body outwards, the antenna, and three stripes of the abdomen."""
    names: list[str] = []
    edges: list[tuple[int, int]] = []
    for side in ("left", "right"):
        for leg in LEGS:
            start = len(names)
            names += [f"{side}_{leg}_{joint}" for joint in JOINTS]
            edges += [(start + j, start + j + 1) for j in range(len(JOINTS) - 1)]
        names.append(f"{side}_antenna")
        start = len(names)
        names += [f"{side}_stripe_{i}" for i in (1, 2, 3)]
        edges += [(start, start + 1), (start + 1, start + 2)]
    return KeypointSchema.create("fly", names, edges)


def sees(camera: int, keypoint: int) -> bool:
    """Whether DeepFly3D's camera `camera` sees keypoint `keypoint` (see the module docstring)."""
    side, part = divmod(keypoint, 19)  # side 0: left (points 0-18), 1: right
    leg, joint = divmod(part, 5)  # leg 3: antenna (joint 0) or stripes (leg 3 joint 1-3)
    stripe = part >= 16
    if camera == 3:
        return (leg in (0, 1) and joint >= 2) or part == 15
    if (camera < 3) != (side == 0):
        return False
    return not (stripe and camera in (2, 4))


@dataclass
class DeepFlyResult:
    """A DeepFly3D result: its cameras, the 2D points each sees, and its 3D (if any)."""

    rig: CameraRig
    pixels: np.ndarray  # (7, F, 38, 2) NaN where the camera does not see the point
    points3d: np.ndarray | None  # (F, 38, 3)
    schema: KeypointSchema  # `fly38`: the points' names and DeepFly3D's bones


def read_df3d_result(path: str | Path) -> DeepFlyResult:
    """A DeepFly3D result pickle as a rig (unit: that of the calibration's translations) and
    views; one line for a file that does not hold what DeepFly3D writes."""
    path = Path(path)
    data = load_numpy_pickle(path)
    if not isinstance(data, dict) or "points2d" not in data:
        raise UserError(f"{path}: not a DeepFly3D result (no points2d)")
    cameras = []
    for c in range(CAMERAS):
        calib = data.get(c)
        keys = ("R", "tvec", "intr", "distort")
        if not isinstance(calib, dict) or any(k not in calib for k in keys):
            raise UserError(f"{path}: camera {c}: no calibration (R, tvec, intr, distort)")
        rotation = np.asarray(calib["R"], dtype=np.float64)
        if rotation.shape != (3, 3) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6):
            raise UserError(f"{path}: camera {c}: R is not a rotation matrix")
        rvec = cv2.Rodrigues(rotation)[0].ravel()
        cameras.append(
            Camera(f"camera_{c}", IMAGE_SIZE, calib["intr"], calib["distort"], rvec, calib["tvec"])
        )
    points2d = np.asarray(data["points2d"], dtype=np.float64)
    if points2d.ndim != 4 or points2d.shape[0] != CAMERAS or points2d.shape[2:] != (38, 2):
        raise UserError(f"{path}: points2d is {points2d.shape}, expected (7, frames, 38, 2)")
    visible = np.array([[sees(c, k) for k in range(38)] for c in range(CAMERAS)])
    pixels = np.where(visible[:, None, :, None], points2d, np.nan)
    pixels[(points2d == 0).all(-1)] = np.nan
    points3d = data.get("points3d")
    if points3d is not None:
        points3d = np.asarray(points3d, dtype=np.float64)
        if points3d.shape != (points2d.shape[1], 38, 3):
            raise UserError(f"{path}: points3d is {points3d.shape}, expected (frames, 38, 3)")
    return DeepFlyResult(CameraRig(cameras, unit="mm"), pixels, points3d, fly38())
