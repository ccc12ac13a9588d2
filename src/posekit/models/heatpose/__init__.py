"""The HeatPose family: RTMPose's CSPNeXt backbone with a feature-pyramid decoder to one
stride-4 heatmap per keypoint, run on instance crops (top-down) or on whole frames
(single-subject).

`model` holds the network and its registered sizes (heatpose-t/s/m/l); the heatmap targets
and decoding are `posekit.models.heatmap_codec`, the backbone `posekit.models.cspnext`.
"""

from posekit.models.heatpose.model import SIZES, HeatPose, HeatPoseConfig

__all__ = ["SIZES", "HeatPose", "HeatPoseConfig"]
