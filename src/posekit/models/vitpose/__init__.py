"""The ViTPose family: a plain ViT with a heatmap decoder, run on instance crops (top-down).

`model` holds the network and its registered sizes (vitpose-s/b/l/h), `codec` the heatmap
targets and decoding, `samples` the training crops, `weights` the published key layouts.
"""

from posekit.models.vitpose.model import SIZES, ViTPose, ViTPoseConfig

__all__ = ["SIZES", "ViTPose", "ViTPoseConfig"]
