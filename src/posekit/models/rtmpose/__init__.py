"""The RTMPose family: a CSPNeXt CNN with a SimCC head, run on instance crops (top-down) or
on whole frames (single-subject).

`model` holds the network and its registered sizes (rtmpose-t/s/m/l), `head` the SimCC head,
`simcc` the labels, loss, decoding and flip test; the backbone is the shared
`posekit.models.cspnext`.
"""

from posekit.models.rtmpose.model import SIZES, RTMPose, RTMPoseConfig

__all__ = ["SIZES", "RTMPose", "RTMPoseConfig"]
