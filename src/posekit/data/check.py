"""`posekit data check`: validate a dataset in any format, including its image files."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posekit.data.dataset import DatasetStats, ImageInfo, KeypointDataset
from posekit.data.layout import load_splits
from posekit.data.problems import LoadReport, Problem


def check_image(path: Path, image: ImageInfo, *, decode: bool = True) -> Problem | None:
    """The problem with one image file, if any: missing, unreadable, not decodable, or of a
    size that differs from the annotation file's width and height."""
    where = {"file": str(path), "image_id": image.id, "field": "file_name"}
    if not path.exists():
        return Problem("image-missing", f"image file not found: {image.file_name}", **where)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        return Problem("image-unreadable", f"cannot read image file: {e}", **where)
    if not decode:
        return None
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if img is None:
        return Problem(
            "image-decode", "image file cannot be decoded (corrupt or not an image)", **where
        )
    h, w = img.shape[:2]
    if (w, h) != (image.width, image.height):
        return Problem(
            "image-size",
            f"annotation says {image.width}x{image.height} but the file is {w}x{h}",
            str(path),
            image_id=image.id,
            field="width/height",
        )
    return None


def check_images(
    ds: KeypointDataset,
    *,
    decode: bool = True,
    workers: int = 4,
    progress: Callable[[int], None] | None = None,
) -> list[Problem]:
    """Check every image file of `ds` (threads: OpenCV decodes without holding the GIL)."""

    def one(im: ImageInfo) -> Problem | None:
        return check_image(ds.image_path(im), im, decode=decode)

    problems = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for p in pool.map(one, ds.images):
            if p is not None:
                problems.append(p)
            if progress is not None:
                progress(1)
    return problems


@dataclass
class SplitCheck:
    """The outcome of checking one split."""

    name: str
    dataset: KeypointDataset
    stats: DatasetStats
    problems: list[Problem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def check_dataset(
    path: str | Path,
    *,
    images: bool = True,
    decode: bool = True,
    progress_factory: Callable[[str, int], Callable[[int], None]] | None = None,
) -> list[SplitCheck]:
    """Load every split of `path` (any format), collect all problems and summary counts.

    Raises `DatasetError` when the input cannot be used at all (the CLI's exit code 2).
    """
    out = []
    for name, ds in load_splits(path).items():
        report = LoadReport()
        report.extend(ds.report)
        problems = list(report.problems)
        if images:
            cb = progress_factory(name, len(ds.images)) if progress_factory else None
            problems += check_images(ds, decode=decode, progress=cb)
        out.append(SplitCheck(name, ds, ds.stats(), problems, dict(report.skipped)))
    return out
