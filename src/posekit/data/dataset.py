"""In-memory keypoint dataset: images, instances and categories (each with its own schema).

Coordinates are continuous pixel coordinates, as in COCO boxes and Ultralytics: the top-left
pixel covers [0, 1) x [0, 1) and its centre is (0.5, 0.5); a horizontal flip maps x to W - x.
Keypoint files (COCO, DeepLabCut, YOLO times the image size) are read without any shift.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from posekit.data.problems import LoadReport
from posekit.schema import KeypointSchema
from posekit.utils.errors import UserError
from posekit.utils.paths import join_inside

#: Visibility flags, as in COCO.
UNLABELLED, OCCLUDED, VISIBLE = 0, 1, 2


@dataclass
class VideoFrame:
    """Where an image that is still a frame of a video comes from (SLEAP): set only by the
    reader that found it, never from a key of a dataset file, so an image entry that merely
    carries a `video` key is checked like any other image."""

    source: str  # the media file, the .pkg.slp, or (image_sequence) the frame's own image
    index: int
    dataset: str | None = None  # the HDF5 dataset of frames embedded in a .pkg.slp
    image_sequence: bool = False


@dataclass
class ImageInfo:
    """One image: id, path relative to the dataset's image root, and size in pixels; `frame`
    when it is a video frame to extract before its file exists (see `VideoFrame`)."""

    id: int
    file_name: str
    width: int
    height: int
    extra: dict[str, Any] = field(default_factory=dict)
    frame: VideoFrame | None = None


@dataclass
class Annotation:
    """One object instance.

    `keypoints` is (K, 3) float64 holding x, y, v for the K keypoints of its category's schema;
    `bbox` is (4,) float64 x, y, w, h. v = 0 unlabelled, 1 labelled but occluded, 2 visible.
    """

    id: int
    image_id: int
    category_id: int
    keypoints: np.ndarray
    bbox: np.ndarray
    area: float
    iscrowd: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_keypoints(self) -> int:
        """Labelled keypoints (v > 0), the COCO `num_keypoints`."""
        return int(np.count_nonzero(self.keypoints[:, 2] > 0))


@dataclass
class Category:
    """An object category and the keypoint schema of its instances."""

    id: int
    name: str
    schema: KeypointSchema
    supercategory: str = ""


@dataclass
class KeypointDataset:
    """One split of a keypoint dataset (what one COCO annotation file holds).

    Example:
        >>> from posekit.data import load_dataset
        >>> ds = load_dataset("demo/data", split="train")  # doctest: +SKIP
        >>> ds.annotations_by_image()[ds.images[0].id]       # doctest: +SKIP
    """

    images: list[ImageInfo]
    annotations: list[Annotation]
    categories: list[Category]
    image_root: Path | None = None
    source: str = ""
    report: LoadReport = field(default_factory=LoadReport)

    # ------------------------------------------------------------------ lookups
    def category(self, category_id: int) -> Category:
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(f"no category with id {category_id} in {self.source or 'dataset'}")

    def schema(self, category_id: int | None = None) -> KeypointSchema:
        """Schema of a category (of the only category when `category_id` is None)."""
        if category_id is None:
            if len(self.categories) != 1:
                raise UserError(
                    f"dataset has {len(self.categories)} categories; pass a category_id"
                )
            return self.categories[0].schema
        return self.category(category_id).schema

    def image_path(self, image: ImageInfo) -> Path:
        """The image's file: `file_name` under the image root, which it may not leave
        (`PathEscapeError` otherwise; the readers report such names and skip the image)."""
        root = self.image_root if self.image_root is not None else Path()
        return join_inside(root, image.file_name)

    def annotations_by_image(self) -> dict[int, list[Annotation]]:
        out: dict[int, list[Annotation]] = {im.id: [] for im in self.images}
        for a in self.annotations:
            out.setdefault(a.image_id, []).append(a)
        return out

    def subset(self, image_ids: Iterable[int], *, source: str | None = None) -> KeypointDataset:
        """The images with these ids and their annotations (same categories and image root)."""
        keep = set(image_ids)
        return replace(
            self,
            images=[im for im in self.images if im.id in keep],
            annotations=[a for a in self.annotations if a.image_id in keep],
            source=source if source is not None else self.source,
            report=LoadReport(),
        )

    # ------------------------------------------------------------------ statistics
    def stats(self) -> DatasetStats:
        """Counts for summaries: instances per category and visibility per keypoint."""
        per_cat: Counter[int] = Counter()
        vis: dict[int, np.ndarray] = {}
        for c in self.categories:
            vis[c.id] = np.zeros((c.schema.num_keypoints, 3), dtype=np.int64)
        by_cat: dict[int, list[np.ndarray]] = defaultdict(list)
        for a in self.annotations:
            per_cat[a.category_id] += 1
            by_cat[a.category_id].append(a.keypoints[:, 2])
        for cid, rows in by_cat.items():
            v = np.stack(rows).astype(np.int64)  # (N, K)
            for flag in (UNLABELLED, OCCLUDED, VISIBLE):
                vis[cid][:, flag] = np.count_nonzero(v == flag, axis=0)
        with_ann = {a.image_id for a in self.annotations}
        return DatasetStats(
            images=len(self.images),
            images_without_instances=sum(1 for im in self.images if im.id not in with_ann),
            instances=dict(per_cat),
            crowd=sum(1 for a in self.annotations if a.iscrowd),
            visibility=vis,
        )


@dataclass
class DatasetStats:
    """Summary counts; `visibility[category_id]` is (K, 3): unlabelled, occluded, visible."""

    images: int
    images_without_instances: int
    instances: dict[int, int]
    crowd: int
    visibility: dict[int, np.ndarray]

    @property
    def total_instances(self) -> int:
        return sum(self.instances.values())

    def labelled_keypoints(self) -> int:
        return int(sum(v[:, 1:].sum() for v in self.visibility.values()))


#: A labelled keypoint further outside the image than this fraction of the image's width
#: (for x) or height (for y) is reported and treated as unlabelled, by every reader.
FAR_OUTSIDE = 0.1


def far_outside(xy: np.ndarray, width: float, height: float) -> np.ndarray:
    """Whether points (x, y) (shape (..., 2)) lie further outside a width x height image than
    `FAR_OUTSIDE` of its size. Every reader applies this one rule (reporting each such
    labelled keypoint and making it unlabelled), so that what one reader accepts passes every
    other's check: a DeepLabCut file converted to COCO checks as clean as it read."""
    xy = np.asarray(xy, dtype=np.float64)
    x, y = xy[..., 0], xy[..., 1]
    with np.errstate(invalid="ignore"):
        return (x < -FAR_OUTSIDE * width) | (x > (1 + FAR_OUTSIDE) * width) | (
            y < -FAR_OUTSIDE * height) | (y > (1 + FAR_OUTSIDE) * height)  # fmt: skip


#: Boxes grown around labelled keypoints (formats without boxes): max(10 px, 10 % of the
#: keypoints' longer extent) on every side.
BOX_MARGIN = 0.1
BOX_MIN_MARGIN = 10.0


def keypoint_instance(
    aid: int,
    image: ImageInfo,
    category_id: int,
    kpts: np.ndarray,
    box: np.ndarray | None = None,
    extra: dict[str, Any] | None = None,
) -> Annotation | None:
    """An instance of a format that labels points: its `box` when the format gives one, else
    the box grown around its labelled keypoints (`BOX_MARGIN`, `BOX_MIN_MARGIN`); area = box
    area. None when there is neither (no labelled keypoint: not an instance)."""
    if box is None:
        box = bbox_from_keypoints(kpts, image.width, image.height, margin=BOX_MARGIN,
                                  min_margin=BOX_MIN_MARGIN)  # fmt: skip
    if box is None:
        return None
    box = np.asarray(box, dtype=np.float64)
    return Annotation(aid, image.id, category_id, kpts, box, float(box[2] * box[3]),
                      extra=extra or {})  # fmt: skip


def bbox_from_keypoints(
    kpts: np.ndarray, width: int, height: int, *, margin: float, min_margin: float
) -> np.ndarray | None:
    """x, y, w, h around the labelled keypoints, grown on every side by
    max(min_margin, margin * longer side) and clipped to the image; None if none is labelled."""
    lab = kpts[kpts[:, 2] > 0, :2]
    if len(lab) == 0:
        return None
    lo, hi = lab.min(axis=0), lab.max(axis=0)
    pad = max(min_margin, margin * float((hi - lo).max()))
    x0, y0 = max(lo[0] - pad, 0.0), max(lo[1] - pad, 0.0)
    x1, y1 = min(hi[0] + pad, float(width)), min(hi[1] + pad, float(height))
    return np.array([x0, y0, x1 - x0, y1 - y0], dtype=np.float64)
