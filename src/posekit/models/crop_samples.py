"""Training crops for top-down models, whatever their targets: one sample per labelled
instance, or one per frame in single-subject mode.

Each sample is the instance's box (randomly shifted, scaled and rotated when augmenting, as
top-down trainers do; with probability `half_body`, the box of the upper or the lower body's
labelled keypoints instead, as MMPose's half-body transform) or, single-subject, the whole
frame, cropped to the model's input size with the crop mapping of inference
(`posekit.data.crops`), randomly mirrored (left and right keypoints swap by the schema) and
colour-jittered. The family's `encode` turns the crop's keypoints (crop-input pixel indices)
and their weights into its targets (heatmaps, SimCC labels ...); `collate` stacks them into
`CropTargets` in the order `encode` returns them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from posekit.data.crops import boxes_to_regions, crop_matrices, to_crop, warp_crops
from posekit.data.dataset import KeypointDataset
from posekit.data.images import ImageReadError, read_image
from posekit.data.transforms import hsv_jitter
from posekit.models.base import class_tables
from posekit.utils.errors import UserError

#: A family's target encoder: keypoints (K, 2) in crop-input pixel indices and weights (K,)
#: (1 labelled, 0 not) -> the crop's target tensors, and the weights it keeps.
CropEncoder = Callable[[np.ndarray, np.ndarray], tuple[torch.Tensor, ...]]

LOWER_BODY_WORDS = ("hip", "knee", "ankle", "foot", "heel", "toe", "leg", "tail")


def is_lower_body(name: str) -> bool:
    """Whether a keypoint belongs to the lower body, by its name (COCO's hips, knees and
    ankles; feet, heels, toes, legs and tails of other schemas)."""
    return any(w in name.lower() for w in LOWER_BODY_WORDS)


def half_body_box(kp: np.ndarray, lower: np.ndarray, rng: np.random.Generator,
                  min_points: int = 3) -> np.ndarray | None:  # fmt: skip
    """The xyxy box (grown 1.5x about its centre) of the upper or the lower body's labelled
    keypoints, chosen at random between the halves that have `min_points` of them; None when
    neither has (or the schema has no lower body)."""
    labelled = kp[:, 2] > 0
    halves = [m for m in (labelled & ~lower, labelled & lower) if m.sum() >= min_points]
    if not lower.any() or not halves:
        return None
    pts = kp[halves[rng.integers(len(halves))], :2]
    lo, hi = pts.min(0), pts.max(0)
    c, size = (lo + hi) / 2, np.maximum((hi - lo) * 1.5, 1.0)
    return np.r_[c - size / 2, c + size / 2]


@dataclass
class CropTargets:
    """A batch of a top-down family's targets: its encoder's tensors, each stacked over the
    crops (e.g. heatmaps (B, K, H, W) and weights (B, K))."""

    parts: tuple[torch.Tensor, ...]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.parts[i]

    def to(self, device: torch.device) -> CropTargets:
        return CropTargets(tuple(t.to(device, non_blocking=True) for t in self.parts))


class CropSamples(Dataset):
    """Training crops of a top-down model of config `cfg` (`input_size`, `box_padding`,
    `pixel_centre`, optionally `half_body` and `single_subject`) with the targets of the
    family's `encode`.

    Instance mode: one sample per labelled instance, cropped around its box. Single-subject
    mode (`cfg.single_subject`): one sample per frame, the whole frame as the crop region, so
    that training sees what prediction sees (no detector, no box); a frame with more than one
    labelled subject is an error naming it (such data needs instance crops).

    Crowd annotations, instances without a labelled keypoint and (single-subject) frames
    without a subject are not trained on; they are counted in `skipped`.
    """

    def __init__(
        self,
        ds: KeypointDataset,
        cfg: Any,
        augment: Any,
        encode: CropEncoder,
        *,
        category_ids: list[int] | None = None,
        seed: int = 0,
    ) -> None:
        self.cfg, self.augment, self.encode, self.seed = cfg, augment, encode, seed
        ids = category_ids or [c.id for c in sorted(ds.categories, key=lambda c: c.id)]
        cls_of = {cid: i for i, cid in enumerate(ids)}
        schemas = [ds.category(cid).schema for cid in ids]
        self.flips, _, _ = class_tables(schemas)
        self.k = self.flips.shape[1]
        self.lower = np.zeros((len(schemas), self.k), dtype=bool)
        for c, s in enumerate(schemas):
            self.lower[c, : s.num_keypoints] = [is_lower_body(n) for n in s.keypoints]
        self.single_subject = bool(getattr(cfg, "single_subject", False))
        self.skipped: Counter[str] = Counter()
        images = {im.id: im for im in ds.images}
        self.items: list[tuple[str, tuple[int, int], np.ndarray, np.ndarray, int, int]] = []
        for a in ds.annotations:
            if a.iscrowd or a.num_keypoints == 0 or a.category_id not in cls_of:
                self.skipped["crowd, unlabelled or other-class instance"] += 1
                continue
            im = images[a.image_id]
            kp = np.zeros((self.k, 3))
            kp[: len(a.keypoints)] = a.keypoints
            box = np.r_[a.bbox[:2], a.bbox[:2] + a.bbox[2:]]
            if self.single_subject:
                box = np.array([0.0, 0.0, im.width, im.height])
            self.items.append((str(ds.image_path(im)), (im.width, im.height), box, kp,
                               cls_of[a.category_id], im.id))  # fmt: skip
        if self.single_subject:
            per_image = Counter(item[5] for item in self.items)
            crowded = [i for i, n in per_image.items() if n > 1]
            if crowded:
                raise UserError(
                    f"single-subject mode: {len(crowded)} images have more than one labelled "
                    f"subject (e.g. image id {crowded[0]}); train on instance crops instead"
                )
            self.skipped["frames without a labelled subject"] = len(ds.images) - len(per_image)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], int]:
        """(crop (3, H, W) uint8 RGB, the family's target tensors, image id)."""
        epoch, i = divmod(i, len(self.items))  # `EpochSampler` folds the epoch in
        path, size, box, kp, cls, image_id = self.items[i]
        try:
            image = read_image(path, size=size)
        except ImageReadError as e:
            raise ImageReadError(f"{e} (run `posekit data check`)") from None
        cfg, a = self.cfg, self.augment
        h, w = cfg.input_size
        centre, region = boxes_to_regions(box[None], w / h, cfg.box_padding)
        angle, flip = np.zeros(1), np.zeros(1, dtype=bool)
        rng = np.random.default_rng([self.seed, epoch, i])
        half_body = 0.0 if self.single_subject else getattr(cfg, "half_body", 0.0)
        if a.enabled and rng.random() < half_body:
            half = half_body_box(kp, self.lower[cls], rng)
            if half is not None:
                centre, region = boxes_to_regions(half[None], w / h, cfg.box_padding)
        if a.enabled:
            region = region * rng.uniform(1 - a.scale, 1 + a.scale)
            centre = centre + rng.uniform(-a.translate, a.translate, 2) * region
            angle = rng.uniform(-a.degrees, a.degrees, 1)
            flip = rng.random(1) < a.flip
        m = crop_matrices(centre, region, (h, w), angles=angle, flips=flip)
        crop = warp_crops(image, m, (h, w), pixel_centre=cfg.pixel_centre)[0]
        if a.enabled and any(a.hsv):
            crop = hsv_jitter(crop, rng, *a.hsv)
        xy = to_crop(kp[None, :, :2], m)[0]  # (K, 2) crop pixel indices
        vis = kp[:, 2] > 0
        if flip[0]:
            xy, vis = xy[self.flips[cls]], vis[self.flips[cls]]
        targets = self.encode(xy, vis.astype(np.float64))
        tensor = torch.from_numpy(np.ascontiguousarray(crop[..., ::-1].transpose(2, 0, 1)))
        return tensor, targets, image_id

    @staticmethod
    def collate(batch: list) -> tuple[torch.Tensor, CropTargets, list[int], None]:
        images = torch.stack([b[0] for b in batch])
        parts = tuple(torch.stack(ts) for ts in zip(*(b[1] for b in batch), strict=True))
        return images, CropTargets(parts), [b[2] for b in batch], None
