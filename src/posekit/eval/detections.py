"""Detector boxes from a COCO detection-results JSON (how COCO's published person-detector
boxes are distributed): `[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]`.

Top-down models evaluated with these boxes instead of the ground truth's give the figures
papers report "with detected boxes". Every bad entry is reported with its index.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from posekit.data.coco import load_json
from posekit.data.dataset import KeypointDataset
from posekit.data.problems import DatasetError, Problem
from posekit.utils.bounds import MAX_COORDINATE, is_number
from posekit.utils.errors import quoted

#: Most detections read from one file (COCO's person detections for val2017: 104,125).
MAX_ENTRIES = 2_000_000

#: Per image: boxes (N, 4) xyxy, scores (N,), class indices (N,).
ImageBoxes = tuple[np.ndarray, np.ndarray, np.ndarray]


def read_detections(
    path: str | Path, ds: KeypointDataset, *, min_score: float = 0.0
) -> dict[int, ImageBoxes]:
    """Boxes per image id of `ds` from a detection-results file (boxes under `min_score`
    left out). Entries that name an image or category the dataset lacks, or hold a malformed
    box or score, are each reported (`DatasetError` listing all of them)."""
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, list):
        raise DatasetError(f"{path}: detection results must be a JSON list of objects")
    if len(data) > MAX_ENTRIES:
        many = f"{len(data):,} detections, more than the {MAX_ENTRIES:,} posekit reads"
        raise DatasetError(f"{path}: {many} from one file")
    images = {im.id for im in ds.images}
    cls_of = {c.id: i for i, c in enumerate(sorted(ds.categories, key=lambda c: c.id))}
    problems: list[Problem] = []
    rows: dict[int, list[tuple[list[float], float, int]]] = {}
    for i, d in enumerate(data):
        where = {"file": str(path), "field": f"[{i}]"}
        if not isinstance(d, dict):
            problems.append(Problem("det-entry", f"entry {i} is not an object", **where))
            continue
        iid, cid, box, score = d.get("image_id"), d.get("category_id", None), d.get("bbox"), \
            d.get("score", 1.0)  # fmt: skip
        problem = _problem(i, iid, cid, box, score, images, cls_of, ds.source or "the dataset")
        if problem is not None:
            problems.append(Problem(*problem, **where))
            continue
        if score >= min_score:
            rows.setdefault(iid, []).append((box, float(score), cls_of.get(cid, 0)))
    if problems:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise DatasetError(f"{path}: {len(problems)} bad detection(s): {shown}{more}", problems)
    out: dict[int, ImageBoxes] = {}
    for iid, entries in rows.items():
        b = np.array([e[0] for e in entries], dtype=np.float64)
        out[iid] = (np.c_[b[:, :2], b[:, :2] + b[:, 2:]], np.array([e[1] for e in entries]),
                    np.array([e[2] for e in entries], dtype=np.int64))  # fmt: skip
    return out


def _problem(
    i: int,
    iid: object,
    cid: object,
    box: object,
    score: object,
    images: set[int],
    classes: dict[int, int],
    dataset: str,
) -> tuple[str, str] | None:
    """(code, message) of what is wrong with detection `i`, or None; ids must be integers
    (not lists, not `true` read as 1), boxes finite, positive and within `MAX_COORDINATE`."""
    if type(iid) is not int or iid not in images:
        return "det-image", f"entry {i}: image_id {quoted(iid)} is not in {dataset}"
    if cid is not None and (type(cid) is not int or cid not in classes):
        return "det-category", f"entry {i}: category_id {quoted(cid)} is not in the dataset"
    numbers = isinstance(box, list) and len(box) == 4 and all(_finite(v) for v in box)
    if not numbers or any(abs(v) > MAX_COORDINATE for v in box) or box[2] <= 0 or box[3] <= 0:
        return "det-bbox", (
            f"entry {i}: bbox {quoted(box)} is not [x, y, w, h] with a positive size, within "
            f"+-{MAX_COORDINATE:g}"
        )
    if not _finite(score):
        return "det-score", f"entry {i}: score {quoted(score)} is not a number"
    return None


def _finite(v: object) -> bool:
    return is_number(v) and math.isfinite(v)  # type: ignore[arg-type]
