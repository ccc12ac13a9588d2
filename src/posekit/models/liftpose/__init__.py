"""The LiftPose family: 2D keypoints over time -> root-relative 3D keypoints in the camera's
frame, with VideoPose3D's temporal dilated convolutions (Pavllo et al., CVPR 2019).

`model` holds the network and its registered sizes (liftpose-27/81/243, the receptive field in
frames); `samples` the training windows cut from a sequence dataset (`posekit.data.sequences`).
"""

from posekit.models.liftpose.model import SIZES, LiftPose, LiftPoseConfig

__all__ = ["SIZES", "LiftPose", "LiftPoseConfig"]
