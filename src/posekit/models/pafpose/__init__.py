"""The pafpose family: bottom-up pose with part affinity fields (OpenPose-style), for any
schema with a skeleton. `model` holds the network and its sizes (pafpose-s/m/l), `targets` the
heatmaps and fields it is trained on, `grouping` the assembly of people, `limbs` the fields of a
schema and the tree the grouping follows."""

from posekit.models.pafpose.model import SIZES, PafOutput, PafPose, PafPoseConfig

__all__ = ["SIZES", "PafOutput", "PafPose", "PafPoseConfig"]
