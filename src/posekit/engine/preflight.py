"""Checks before the first epoch, so that training fails early in one line or not at all.

A bad image file found mid-epoch used to stop a run with a long traceback after minutes of
work; a val split without instances meant `best.pt` was never written; a dataset without
labelled instances trained on nothing and exited 0. Each case is decided here instead.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from posekit.data.dataset import KeypointDataset
from posekit.data.images import ImageReadError, file_header, max_image_pixels
from posekit.data.problems import DatasetError
from posekit.engine.config import TrainConfig

log = logging.getLogger(__name__)


def unreadable_images(ds: KeypointDataset) -> dict[int, str]:
    """Image id -> why its file cannot be trained on: missing, empty, not an image, over the
    pixel cap, or of another size than the dataset records (in either EXIF orientation). Only
    headers are read, so this is quick even for large datasets."""
    cap = max_image_pixels()
    bad = {}
    for im in ds.images:
        try:
            header = file_header(ds.image_path(im))
        except (ImageReadError, ValueError) as e:
            bad[im.id] = str(e)
            continue
        sizes = {(header.width, header.height), header.oriented_size}
        if header.width * header.height > cap:
            bad[im.id] = f"{ds.image_path(im)}: over the pixel limit of {cap:,}"
        elif (im.width, im.height) not in sizes:
            bad[im.id] = (f"{ds.image_path(im)}: the file is {header.width}x{header.height}, "
                          f"the dataset says {im.width}x{im.height}")  # fmt: skip
    return bad


def without_unreadable(ds: KeypointDataset, split: str, data: str, say: bool) -> KeypointDataset:
    """`ds` less the images `unreadable_images` finds, said in one warning with a count."""
    bad = unreadable_images(ds)
    if not bad:
        return ds
    if say:
        first = "; ".join(list(bad.values())[:3])
        log.warning("%s split: %d of %d images cannot be read and are left out (%s%s); "
                    "`posekit data check %s` lists them", split, len(bad), len(ds.images), first,
                    " ..." if len(bad) > 3 else "", data)  # fmt: skip
    return ds.subset([im.id for im in ds.images if im.id not in bad])


def labelled_instances(ds: KeypointDataset) -> int:
    """Instances a model can learn from or be scored on: not crowd, with a labelled keypoint."""
    return sum(1 for a in ds.annotations if not a.iscrowd and a.num_keypoints > 0)


def usable_splits(
    data: str, train: KeypointDataset, val: KeypointDataset | None, say: bool = True
) -> tuple[KeypointDataset, KeypointDataset | None]:
    """The splits to train and validate on: unreadable images left out; no labelled instance
    to train on is a `DatasetError`; a val split without one is dropped with a warning (the
    run then keeps the last weights as best.pt)."""
    train = without_unreadable(train, "train", data, say)
    if labelled_instances(train) == 0:
        raise DatasetError(
            f"{data}: the train split has no labelled instances to train on ({len(train.images)} "
            f"usable images, {len(train.annotations)} annotations)"
        )
    if val is None:
        if say:
            log.warning("%s has no 'val' split: training without validation", data)
        return train, None
    val = without_unreadable(val, "val", data, say)
    if labelled_instances(val) == 0:
        if say:
            log.warning("%s: the val split has no labelled instances: training without "
                        "validation (best.pt is the latest weights)", data)  # fmt: skip
        return train, None
    return train, val


def resumed_config(saved: dict[str, Any], given: TrainConfig) -> TrainConfig:
    """The configuration of a resumed run: as saved, with the epoch count given now, and the
    data given now when there is one (`--data` on resume says where the dataset is today).

    Raises:
        DatasetError: no data given and the saved path is not found from here.
    """
    cfg = replace(TrainConfig.from_dict(saved), epochs=given.epochs)
    if given.data:
        return replace(cfg, data=given.data)
    if not Path(cfg.data).exists():
        raise DatasetError(
            f"the run was trained on {cfg.data!r}, which is not found from {Path.cwd()}; "
            "pass --data to say where the dataset is now"
        )
    return cfg


def absolute_data(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with its data path made absolute (when it exists), so that a run can be resumed
    from any working directory."""
    path = Path(cfg.data)
    return replace(cfg, data=str(path.resolve())) if cfg.data and path.exists() else cfg
