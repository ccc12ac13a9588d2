"""3D keypoints, by two routes on top of `data` and `track`: from calibrated cameras (camera
rigs in Anipose's / Pose2Sim's `calibration.toml`, triangulation of tracked 2D keypoints), and
from one camera by lifting each track's 2D with a network trained on synthetic motion
(`Lifter`, `posekit.threed.motion`)."""

from posekit.threed.cameras import Camera, CameraRig
from posekit.threed.lifting import Lifter
from posekit.threed.qualisys import read_qca
from posekit.threed.triangulate import Triangulated, reprojection_error, triangulate

__all__ = [
    "Camera",
    "CameraRig",
    "Lifter",
    "Triangulated",
    "read_qca",
    "reprojection_error",
    "triangulate",
]
