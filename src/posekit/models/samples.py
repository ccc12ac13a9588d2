"""Training and validation samples: a torch Dataset over a `KeypointDataset`, and its collate."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from posekit.data.dataset import KeypointDataset
from posekit.data.images import ImageReadError, read_image
from posekit.data.transforms import (
    Letterbox,
    hflip_matrix,
    hsv_jitter,
    mosaic,
    random_affine,
    transform_instances,
    translation,
    warp,
)
from posekit.models.base import Targets, class_tables
from posekit.ops.instances import Instances
from posekit.utils.bounds import check_ranges, ranged

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation; `AugmentConfig.off()` for validation."""

    scale: float = ranged(0.5, 0, 0.99)  # random zoom in [1 - scale, 1 + scale]
    degrees: float = ranged(15.0, 0, 180)  # random rotation in [-degrees, degrees]
    translate: float = ranged(0.1, 0, 1)  # fraction of the image size
    # probability of a horizontal flip (keypoints swap by the schema)
    flip: float = ranged(0.5, 0, 1)
    hsv: tuple[float, float, float] = ranged((0.015, 0.6, 0.4), 0, 1)  # hue, saturation, value
    blur: float = ranged(0.05, 0, 1)  # probability of a light Gaussian blur
    # probability of a 4-image mosaic (YOLO's); off by default: on the CPU budgets we measure,
    # more steps on whole images served better than more (cut) people per step
    mosaic: float = ranged(0.0, 0, 1)

    def __post_init__(self) -> None:
        check_ranges(self, "augment")

    @classmethod
    def off(cls) -> AugmentConfig:
        return cls(scale=0.0, degrees=0.0, translate=0.0, flip=0.0, hsv=(0, 0, 0), blur=0.0,
                   mosaic=0.0)  # fmt: skip

    @property
    def enabled(self) -> bool:
        return self != AugmentConfig.off()


class KeypointSamples(Dataset):
    """Images and their instances, letterboxed (and augmented) to `imgsz` x `imgsz`, or with
    `rect`, when every image letterboxes to the same rectangle, to that rectangle padded to a
    multiple of 32 (a 4:3 dataset then trains on 320 x 256 instead of 320 x 320: 20 % less work).

    Crowd annotations are not trained on (they mark regions, not instances); they are counted
    in `skipped` and logged, never dropped silently.
    """

    def __init__(
        self,
        ds: KeypointDataset,
        imgsz: int,
        augment: AugmentConfig,
        *,
        category_ids: list[int] | None = None,
        seed: int = 0,
        rect: bool = False,
    ) -> None:
        self.imgsz, self.augment, self.seed = imgsz, augment, seed
        self.category_ids = category_ids or [
            c.id for c in sorted(ds.categories, key=lambda c: c.id)
        ]
        cls_of = {cid: i for i, cid in enumerate(self.category_ids)}
        schemas = [ds.category(cid).schema for cid in self.category_ids]
        self.flips, _, _ = class_tables(schemas)
        k = self.flips.shape[1]
        self.skipped: Counter[str] = Counter()
        by_image = ds.annotations_by_image()
        self.paths, self.sizes, self.instances, self.image_ids = [], [], [], []
        for im in ds.images:
            boxes, kps, classes = [], [], []
            for a in by_image.get(im.id, []):
                if a.iscrowd:
                    self.skipped["crowd annotation"] += 1
                    continue
                if a.category_id not in cls_of:
                    self.skipped[f"annotation of category {a.category_id}"] += 1
                    continue
                kp = np.zeros((k, 3))
                kp[: len(a.keypoints)] = a.keypoints
                kp[kp[:, 2] <= 0] = 0.0
                boxes.append(np.r_[a.bbox[:2], a.bbox[:2] + a.bbox[2:]])
                kps.append(kp)
                classes.append(cls_of[a.category_id])
            self.paths.append(str(ds.image_path(im)))
            self.sizes.append((im.width, im.height))
            self.image_ids.append(im.id)
            self.instances.append(Instances(
                boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4),
                keypoints=np.array(kps, dtype=np.float64).reshape(-1, k, 3),
                classes=np.array(classes, dtype=np.int64),
            ))  # fmt: skip
        if self.skipped:
            log.warning("%s: not trained on: %s", ds.source,
                        ", ".join(f"{n} {w}" for w, n in self.skipped.items()))  # fmt: skip
        self.stride = common_stride(self.sizes, imgsz) if rect else None
        h, w = Letterbox.fit(*self.sizes[0], imgsz, self.stride).shape if self.sizes else (0, 0)
        self.canvas: tuple[int, int] = (w, h) if self.stride else (imgsz, imgsz)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> np.ndarray:
        try:
            return read_image(self.paths[i], size=self.sizes[i])
        except ImageReadError as e:
            raise ImageReadError(f"{e} (run `posekit data check`)") from None

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Instances, int, np.ndarray]:
        """(image (3, H, W) uint8 RGB, instances in input pixels, image id, 3x3 matrix from
        the original image to the input)."""
        epoch, i = divmod(i, len(self.paths))  # `EpochSampler` folds the epoch in
        img = self.load(i)
        h, w = img.shape[:2]
        inst = self.instances[i]
        a = self.augment
        if not a.enabled:
            lb = Letterbox.fit(w, h, self.imgsz, self.stride)
            m = lb.matrix()
            out, inst = lb.apply(img), transform_instances(inst, m, self.canvas)
        else:
            rng = np.random.default_rng([self.seed, epoch, i])
            affine = random_affine(rng, self.canvas, scale=a.scale, degrees=a.degrees,
                                   translate=a.translate)  # fmt: skip
            # `src`: what is warped (the image, or a mosaic) -> input; `m`: image i -> input
            if a.mosaic > 0 and rng.random() < a.mosaic:
                img, inst, tile = self._mosaic(i, img, rng)  # a canvas twice the size
                w2, h2 = self.canvas[0] / 2, self.canvas[1] / 2
                src = affine @ translation(-w2, -h2)
                m = src @ tile
            else:
                src = m = affine @ Letterbox.fit(w, h, self.imgsz, self.stride).matrix()
            flip = rng.random() < a.flip
            if flip:
                mirror = hflip_matrix(self.canvas)
                src, m = mirror @ src, mirror @ m
            out = warp(img, src, self.canvas)
            inst = transform_instances(inst, src, self.canvas,
                                       flip_tables=self.flips if flip else None)  # fmt: skip
            if any(a.hsv):
                out = hsv_jitter(out, rng, *a.hsv)
            if rng.random() < a.blur:
                out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.2))
        tensor = torch.from_numpy(np.ascontiguousarray(out[..., ::-1].transpose(2, 0, 1)))
        return tensor, inst, self.image_ids[i], m

    def _mosaic(
        self, i: int, img: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, Instances, np.ndarray]:
        """Image i (already loaded) and three random others as a mosaic twice the canvas, its
        instances, and image i's matrix into it; the caller's affine crops it to the canvas."""
        others = [int(j) for j in rng.integers(0, len(self.paths), 3)]
        images = [img, *(self.load(j) for j in others)]
        parts = [self.instances[j] for j in (i, *others)]
        big, inst, matrices = mosaic(images, parts, self.canvas, rng)
        return big, inst, matrices[0]


class EpochSampler(Sampler[int]):
    """Wraps a sampler and folds the epoch into each index (`epoch * n + i`), so persistent
    data-loader workers draw new augmentations every epoch without being restarted."""

    def __init__(self, base: Sampler[int], dataset_size: int) -> None:
        self.base, self.n = base, dataset_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)  # a DistributedSampler reshuffles by epoch

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        return (self.epoch * self.n + i for i in self.base)


def common_stride(sizes: list[tuple[int, int]], imgsz: int, stride: int = 32) -> int | None:
    """`stride` when every image letterboxes to the same rectangle padded to a multiple of it
    (so batches can skip the square's padding), else None (square canvases)."""
    shapes = {Letterbox.fit(w, h, imgsz, stride).shape for w, h in sizes}
    return stride if len(shapes) == 1 else None


def collate(batch: list) -> tuple[torch.Tensor, Targets, list[int], list[np.ndarray]]:
    """Stack images and pad instances to the largest count in the batch."""
    images = torch.stack([b[0] for b in batch])
    k = batch[0][1].keypoints.shape[1]  # (N, K, 3), also when N == 0
    m = max(1, max(len(b[1]) for b in batch))
    n = len(batch)
    boxes = torch.zeros(n, m, 4)
    kps = torch.zeros(n, m, k, 3)
    classes = torch.zeros(n, m, dtype=torch.long)
    mask = torch.zeros(n, m, dtype=torch.bool)
    for j, (_, inst, _, _) in enumerate(batch):
        c = len(inst)
        if c:
            boxes[j, :c] = torch.from_numpy(inst.boxes).float()
            kps[j, :c] = torch.from_numpy(inst.keypoints).float()
            classes[j, :c] = torch.from_numpy(inst.classes)
            mask[j, :c] = True
    return images, Targets(boxes, classes, kps, mask), [b[2] for b in batch], [b[3] for b in batch]
