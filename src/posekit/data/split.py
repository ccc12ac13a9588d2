"""`posekit data split`: seeded split of a dataset into train / val / test, by image."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from posekit.data.dataset import Annotation, ImageInfo, KeypointDataset
from posekit.data.layout import SPLITS, load_splits, resolve_posekit, write_posekit


def split_dataset(
    ds: KeypointDataset, *, val: float = 0.1, test: float = 0.0, seed: int = 0
) -> dict[str, KeypointDataset]:
    """Shuffle image ids with `seed` and cut them into train / val / test.

    Fractions are of the number of images and rounded to the nearest image; every image and
    every annotation lands in exactly one split. Empty splits are left out.
    """
    if not (0 <= val <= 1 and 0 <= test <= 1 and val + test <= 1):
        raise ValueError(f"val ({val}) and test ({test}) must be fractions summing to <= 1")
    ids = np.array(sorted(im.id for im in ds.images))
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val, n_test = round(val * len(ids)), round(test * len(ids))
    parts = {
        "val": ids[order[:n_val]],
        "test": ids[order[n_val : n_val + n_test]],
        "train": ids[order[n_val + n_test :]],
    }
    return {
        s: ds.subset(parts[s].tolist(), source=f"{ds.source} ({s})")
        for s in SPLITS
        if len(parts[s])
    }


def merge_splits(splits: dict[str, KeypointDataset]) -> KeypointDataset:
    """All splits of one dataset as one. Ids are renumbered when two splits use the same ones;
    the splits must share their image folder (as in the posekit layout)."""
    first = next(iter(splits.values()))
    images = [im for ds in splits.values() for im in ds.images]
    anns = [a for ds in splits.values() for a in ds.annotations]
    if len({im.id for im in images}) != len(images) or len({a.id for a in anns}) != len(anns):
        images, anns = _renumber(splits)
    return KeypointDataset(images, anns, first.categories, first.image_root, first.source)


def _renumber(splits: dict[str, KeypointDataset]) -> tuple[list[ImageInfo], list[Annotation]]:
    images: list[ImageInfo] = []
    anns: list[Annotation] = []
    for ds in splits.values():
        remap = {}
        for im in ds.images:
            remap[im.id] = len(images) + 1
            images.append(replace(im, id=remap[im.id]))
        for a in ds.annotations:
            anns.append(replace(a, id=len(anns) + 1, image_id=remap[a.image_id]))
    return images, anns


def split_on_disk(
    src: str | Path,
    out: str | Path | None = None,
    *,
    val: float = 0.1,
    test: float = 0.0,
    seed: int = 0,
) -> Path:
    """Re-split a posekit dataset (all its current splits together) and write the new
    annotation files, in place or into a new posekit folder `out`."""
    src = Path(src)
    spec = resolve_posekit(src)
    merged = merge_splits(load_splits(src))
    new = split_dataset(merged, val=val, test=test, seed=seed)
    target = Path(out) if out is not None else spec.root
    if target.resolve() == spec.root.resolve():
        for f in spec.annotations.values():  # old split files that the new split lacks go away
            if f.stem not in new:
                f.unlink()
    return write_posekit(new, target)
