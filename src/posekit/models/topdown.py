"""What every top-down (crop) family shares: crops in, one detection per crop out.

A crop family subclasses `TopDownModel` and supplies its network (`forward` on RGB crops in
0..1 of `config.input_size`), `crop_encoder()` (its training targets), `loss`,
`decode_crops` and `merge_flip_test`. Its config dataclass has `input_size` (height, width),
`mean` / `std`, `box_padding`, `pixel_centre`, `flip_test` and `single_subject`: with the
last, the crop is the whole frame (one subject per image, no detector), in training and in
prediction alike.

`HeatmapTopDownModel` supplies all of that but the network for families whose output is one
heatmap per keypoint (UDP targets, DARK decoding, `posekit.models.heatmap_codec`).
"""

from __future__ import annotations

from typing import Any

import torch

from posekit.models.base import Detections, KeypointModel, class_tables
from posekit.models.input_mode import CROPS, WHOLE_FRAME, InputMode

#: the ImageNet statistics on 0..1 RGB that the crop families normalise with by default
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    ) -> list[Detections]:
        """One detection per crop, in crop-input pixels (`decode_crops`): top-down models
        never drop an instance, so `conf` and the NMS settings do not apply."""
        xy, scores = self.decode_crops(outputs)
        kp = torch.cat([xy, scores[..., None]], -1)[:, None]  # (M, 1, K, 3)
        zeros = torch.zeros(1, dtype=torch.long)
        return [Detections(torch.zeros(1, 4), s.mean()[None], zeros, k)
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
