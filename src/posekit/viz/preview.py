"""Preview images of a dataset with its ground-truth skeletons drawn (`posekit data preview`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from posekit.data.dataset import KeypointDataset
from posekit.data.images import read_image
from posekit.utils.outputs import claim_output
from posekit.viz.annotator import SkeletonAnnotator, grid


def draw_ground_truth(ds: KeypointDataset, image_id: int) -> np.ndarray:
    """The image with every instance's box, keypoints (hollow = occluded) and skeleton."""
    im = next(i for i in ds.images if i.id == image_id)
    img = read_image(ds.image_path(im), size=(im.width, im.height))
    anns = ds.annotations_by_image().get(image_id, [])
    for cat in ds.categories:
        mine = [a for a in anns if a.category_id == cat.id]
        if not mine:
            continue
        kp = np.stack([a.keypoints for a in mine])
        boxes = np.stack([np.r_[a.bbox[:2], a.bbox[:2] + a.bbox[2:]] for a in mine])
        names = [f"{cat.name} {a.id}" for a in mine]
        img = SkeletonAnnotator(cat.schema).annotate(img, kp, boxes, names)
    return img


def write_previews(
    ds: KeypointDataset, out_dir: str | Path, n: int = 16, seed: int = 0, *, force: bool = False
) -> Path:
    """Write `n` annotated images (chosen with `seed`) and a contact sheet `grid.png` into a
    folder that is empty or an earlier preview (`force=True`: any folder; nothing deleted)."""
    out = claim_output(out_dir, "data preview", source=ds.source, force=force)
    rng = np.random.default_rng(seed)
    ids = [im.id for im in ds.images]
    chosen = sorted(rng.choice(ids, size=min(n, len(ids)), replace=False).tolist()) if ids else []
    drawn = []
    for iid in chosen:
        img = draw_ground_truth(ds, iid)
        cv2.imwrite(str(out / f"image_{iid:06d}.jpg"), img)
        drawn.append(img)
    if drawn:
        cv2.imwrite(str(out / "grid.png"), grid(drawn))
    return out
