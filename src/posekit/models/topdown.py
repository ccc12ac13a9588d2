"""What every top-down (crop) family shares: crops in, one detection per crop out.

A crop family subclasses `TopDownModel` and supplies its network (`forward` on RGB crops in
0..1 of `config.input_size`), `crop_encoder()` (its training targets), `loss`,
`decode_crops` and `merge_flip_test`. Its config dataclass has `input_size` (height, width),
`mean` / `std`, `box_padding`, `pixel_centre`, `flip_test` and `single_subject`: with the
last, the crop is the whole frame (one subject per image, no detector), in training and in
prediction alike.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from posekit.models.base import Detections, KeypointModel, class_tables


class TopDownModel(KeypointModel):
    """Base class of the crop families (see the module docstring)."""

    input_kind: ClassVar[str] = "crops"

    @property
    def single_subject(self) -> bool:
        return bool(self.config.single_subject)

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
        from posekit.engine.crop_samples import CropSamples

        return CropSamples(ds, self.config, augment, self.crop_encoder(),
                           category_ids=options.get("category_ids"),
                           seed=options.get("seed", 0))  # fmt: skip

    def decode(
        self,
        outputs: Any,
        *,
        conf: float = 0.25,
        iou: float = 0.65,
        max_det: int = 300,
        oks_nms: float = 0.9,
    ) -> list[Detections]:
        """One detection per crop, in crop-input pixels (`decode_crops`): top-down models
        never drop an instance, so `conf` and the NMS settings do not apply."""
        xy, scores = self.decode_crops(outputs)
        kp = torch.cat([xy, scores[..., None]], -1)[:, None]  # (M, 1, K, 3)
        zeros = torch.zeros(1, dtype=torch.long)
        return [Detections(torch.zeros(1, 4), s.mean()[None], zeros, k)
                for k, s in zip(kp, scores, strict=True)]  # fmt: skip
