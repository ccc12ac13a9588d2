"""What every top-down (crop) family shares: crops in, one detection per crop out.

A crop family subclasses `TopDownModel` and supplies its network (`forward` on RGB crops in
0..1 of `config.input_size`), `crop_encoder()` (its training targets), `loss`,
`decode_crops` and `merge_flip_test`. Its config dataclass subclasses `TopDownConfig`, which
defines once the crop settings they share (`input_size`, `mean` / `std`, `box_padding`,
`flip_test`, `half_body`, `pixel_centre`, `single_subject`): with `single_subject`, the crop
is the whole frame (one subject per image, no detector), in training and in prediction
alike.

`HeatmapTopDownModel` supplies all of that but the network for families whose output is one
heatmap per keypoint (UDP targets, DARK decoding, `posekit.models.heatmap_codec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from posekit.models.base import KeypointModel, class_tables
from posekit.models.input_mode import CROPS, WHOLE_FRAME, InputMode
from posekit.ops.instances import Instances
from posekit.utils.bounds import check_ranges, ranged

#: the ImageNet statistics on 0..1 RGB that the crop families normalise with by default
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TopDownConfig:
    """The crop settings of every top-down family, defined once; a family's config adds its
    size and codec fields (and saves all of them with the weights)."""

    # crop (height, width), multiples of 32
    input_size: tuple[int, int] = ranged((256, 192), 32, 4096)
    mean: tuple[float, float, float] = ranged(IMAGENET_MEAN, -1000, 1000)  # on 0..1 RGB
    std: tuple[float, float, float] = ranged(IMAGENET_STD, 1e-06, 1000)
    box_padding: float = ranged(1.25, 0.1, 10)  # crops cover the box grown by this factor
    flip_test: bool = True  # average with the mirrored crop's output at inference
    # training: probability of cropping to the upper or lower body
    half_body: float = ranged(0.3, 0, 1)
    # where pixel i's centre lies in the coordinates the model reads and outputs: 0.5 in
    # posekit's continuous coordinates; 0 for weights trained on pixel indices (MMPose,
    # transformers), which then see exactly the crops they were trained on
    pixel_centre: float = ranged(0.5, 0, 1)
    single_subject: bool = False  # the crop is the whole frame (see the module docstring)
    name: str = "topdown"
    extra: dict[str, Any] = field(default_factory=dict)  # where the weights came from

    def __post_init__(self) -> None:
        check_ranges(self, f"{self.name} config")

    @property
    def imgsz(self) -> int:
        """The longer side of the crop (what size-agnostic code reads)."""
        return max(self.input_size)


class TopDownModel(KeypointModel):
    """Base class of the crop families (see the module docstring)."""

    @property
    def input_mode(self) -> InputMode:
        return WHOLE_FRAME if self.config.single_subject else CROPS

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in 0..1 -> the network's normalised input (`config.mean`, `config.std`)."""
        mean = torch.tensor(self.config.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.config.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def flip_index(self, classes: torch.Tensor) -> torch.Tensor:
        """(N, K) flip permutation of each instance's class (unused slots map to themselves)."""
        flips, _, _ = class_tables(self.schemas)
        return torch.from_numpy(flips).to(classes.device)[classes]

    def example_input(self, batch: int = 2) -> torch.Tensor:
        return torch.rand(batch, 3, *self.config.input_size)

    def crop_encoder(self) -> Any:
        """The training-target encoder `CropSamples` calls per crop (a picklable callable:
        data-loading workers run it)."""
        raise NotImplementedError

    def training_samples(self, ds: Any, imgsz: int, augment: Any, **options: Any) -> Any:
        """Crops around each instance's box (or whole frames, single-subject), with top-down
        augmentation and this family's targets."""
        from posekit.models.crop_samples import CropSamples

        return CropSamples(ds, self.config, augment, self.crop_encoder(),
                           category_ids=options.get("category_ids"),
                           seed=options.get("seed", 0))  # fmt: skip

    def decode(
        self,
        outputs: Any,
        *,
        conf: float,
        iou: float,
        max_det: int,
        oks_nms: float,
    ) -> list[Instances]:
        """One detection per crop, in crop-input pixels (`decode_crops`): top-down models
        never drop an instance, so `conf` and the NMS settings do not apply."""
        xy, scores = self.decode_crops(outputs)
        kp = torch.cat([xy, scores[..., None]], -1)[:, None]  # (M, 1, K, 3)
        zeros = torch.zeros(1, dtype=torch.long)
        return [Instances(boxes=torch.zeros(1, 4), keypoints=k, classes=zeros,
                          scores=s.mean()[None])
                for k, s in zip(kp, scores, strict=True)]  # fmt: skip


class HeatmapTopDownModel(TopDownModel):
    """A crop family whose `forward` returns heatmaps (B, K, h, w); its config adds
    `heatmap_size` (h, w) and `sigma` (of the target Gaussians, in heatmap pixels)."""

    def export_output_names(self) -> list[str]:
        return ["heatmaps"]

    def crop_encoder(self) -> Any:
        """UDP Gaussian heatmaps and keypoint weights (`heatmap_codec.HeatmapEncoder`)."""
        from posekit.models.heatmap_codec import HeatmapEncoder

        c = self.config
        return HeatmapEncoder(c.input_size, c.heatmap_size, c.sigma)

    def loss(self, outputs: torch.Tensor, targets: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Keypoint-weighted MSE between predicted and target heatmaps (the `CropTargets` of
        `crop_encoder`: heatmaps, weights)."""
        from posekit.models.heatmap_codec import heatmap_loss

        heatmaps, weights = targets.parts
        loss = heatmap_loss(outputs.float(), heatmaps, weights)
        return loss, {"heatmap": float(loss.detach())}

    def decode_crops(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmap maxima refined by DARK (`heatmap_codec.decode_heatmaps`), mapped from
        heatmap to crop-input pixels: both span the same region index to index (UDP)."""
        from posekit.models.heatmap_codec import decode_heatmaps, heatmap_to_input

        xy, scores = decode_heatmaps(outputs.float())
        return heatmap_to_input(xy, self.config.input_size, tuple(outputs.shape[-2:])), scores

    def merge_flip_test(self, outputs: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """The mean of each crop's heatmaps and its mirror's, flipped back (left and right
        keypoints swapped by the class's flip permutation)."""
        from posekit.models.heatmap_codec import flip_back

        m = len(outputs) // 2
        return (outputs[:m] + flip_back(outputs[m:], self.flip_index(classes))) / 2
