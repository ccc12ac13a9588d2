"""3D keypoints from calibrated cameras: camera rigs in Anipose's / Pose2Sim's
`calibration.toml`, and triangulation of tracked 2D keypoints (on top of `data` and `track`)."""

from posekit.threed.cameras import Camera, CameraRig
from posekit.threed.qualisys import read_qca
from posekit.threed.triangulate import Triangulated, reprojection_error, triangulate

__all__ = [
    "Camera",
    "CameraRig",
    "Triangulated",
    "read_qca",
    "reprojection_error",
    "triangulate",
]
