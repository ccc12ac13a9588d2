"""The ViTPose family: a plain ViT with a heatmap decoder, run on instance crops (top-down).

`model` holds the network and its registered sizes (vitpose-s/b/l/h), `weights` the published
key layouts; the heatmap targets and decoding are `posekit.models.heatmap_codec`, the training
crops and the shared top-down behaviour `posekit.models.crop_samples` and
`posekit.models.topdown`.
"""

from posekit.models.vitpose.model import SIZES, ViTPose, ViTPoseConfig

__all__ = ["SIZES", "ViTPose", "ViTPoseConfig"]
