"""Evaluation inputs as arrays: ground truth and predictions, one block per category.

Predictions come as COCO results (a list of {image_id, category_id, keypoints, score}, from
posekit or any other tool) and are validated entry by entry; every bad entry is named.
Detection areas follow pycocotools' `loadRes`: when the first result has a non-empty `bbox`,
every area is its width x height; otherwise the area is that of the keypoints' extent (all
keypoints, as pycocotools does). A result's own `area` field is ignored, as there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posekit.data.dataset import KeypointDataset
from posekit.data.problems import DatasetError, Problem
from posekit.schema import KeypointSchema
from posekit.utils.bounds import MAX_COORDINATE, is_number
from posekit.utils.errors import quoted

#: How many problems a `DatasetError` message spells out before "and N more".
SHOWN_PROBLEMS = 5


@dataclass
class CategoryGT:
    """Ground truth of one category: N instances with K keypoints."""

    category_id: int
    schema: KeypointSchema
    image_index: np.ndarray  # (N,) position of the image in `GroundTruth.image_ids`
    ids: np.ndarray  # (N,) annotation ids
    keypoints: np.ndarray  # (N, K, 3) x, y, v
    bbox: np.ndarray  # (N, 4) x, y, w, h
    area: np.ndarray  # (N,)
    iscrowd: np.ndarray  # (N,) bool
    # (N,) labelled keypoints, from the visibility flags (pycocotools reads the declared field;
    # the two differ only in files that `posekit data check` reports as inconsistent)
    num_keypoints: np.ndarray
    head_size: np.ndarray  # (N,) for PCKh; NaN where the annotation gives none


@dataclass
class GroundTruth:
    """All ground truth of a dataset split, ready for evaluation."""

    image_ids: np.ndarray  # (I,) sorted unique image ids
    categories: dict[int, CategoryGT]

    @classmethod
    def from_dataset(cls, ds: KeypointDataset) -> GroundTruth:
        image_ids = np.unique(np.array([im.id for im in ds.images], dtype=np.int64))
        cats = {}
        for cat in sorted(ds.categories, key=lambda c: c.id):
            anns = [a for a in ds.annotations if a.category_id == cat.id]
            k = cat.schema.num_keypoints
            n = len(anns)
            cats[cat.id] = CategoryGT(
                category_id=cat.id,
                schema=cat.schema,
                image_index=np.searchsorted(image_ids, [a.image_id for a in anns]).astype(np.int64),
                ids=np.array([a.id for a in anns], dtype=np.int64),
                keypoints=np.stack([a.keypoints for a in anns]) if n else np.zeros((0, k, 3)),
                bbox=np.stack([a.bbox for a in anns]) if n else np.zeros((0, 4)),
                area=np.array([a.area for a in anns], dtype=np.float64),
                iscrowd=np.array([bool(a.iscrowd) for a in anns], dtype=bool),
                num_keypoints=np.array([a.num_keypoints for a in anns], dtype=np.int64),
                head_size=np.array([_head_size(a.extra) for a in anns], dtype=np.float64),
            )
        return cls(image_ids, cats)


def _head_size(extra: Mapping[str, Any]) -> float:
    """Head size for PCKh: `head_size`, or 0.6 x the diagonal of `head_box` [x, y, w, h] (MPII)."""
    if "head_size" in extra:
        return float(extra["head_size"])
    box = extra.get("head_box")
    if isinstance(box, list) and len(box) == 4:
        return 0.6 * math.hypot(float(box[2]), float(box[3]))
    return math.nan


@dataclass
class CategoryPred:
    """Predictions of one category: M detections."""

    category_id: int
    image_index: np.ndarray  # (M,)
    ids: np.ndarray  # (M,) 1-based position in the results list, as pycocotools numbers them
    keypoints: np.ndarray  # (M, K, 3) x, y, score
    score: np.ndarray  # (M,)
    area: np.ndarray  # (M,)


@dataclass
class Predictions:
    """Predictions by category; build with `from_coco_results` or `from_arrays`."""

    categories: dict[int, CategoryPred]

    @classmethod
    def from_arrays(
        cls,
        gt: GroundTruth,
        category_id: int,
        image_ids: np.ndarray,
        keypoints: np.ndarray,
        scores: np.ndarray,
        areas: np.ndarray | None = None,
    ) -> Predictions:
        """Predictions of one category from arrays (fast path, no per-entry Python objects).

        `areas` defaults to the keypoints' extent, as for COCO results without a bbox.
        """
        image_ids = np.asarray(image_ids, dtype=np.int64)
        kp = np.asarray(keypoints, dtype=np.float64)
        pos = np.searchsorted(gt.image_ids, image_ids)
        found = pos < len(gt.image_ids)
        found[found] = gt.image_ids[pos[found]] == image_ids[found]
        bad = np.flatnonzero(~found)
        if len(bad):
            raise DatasetError(f"prediction {bad[0]}: unknown image_id {image_ids[bad[0]]}")
        if areas is None:
            areas = _extent_area(kp)
        ids = np.arange(1, len(kp) + 1, dtype=np.int64)
        pred = CategoryPred(
            category_id,
            pos.astype(np.int64),
            ids,
            kp,
            np.asarray(scores, dtype=np.float64),
            np.asarray(areas, np.float64),
        )
        return cls({category_id: pred})

    @classmethod
    def from_coco_results(
        cls, results: Sequence[Mapping[str, Any]], gt: GroundTruth, *, source: str = "predictions"
    ) -> Predictions:
        """Validate COCO keypoint results against `gt`; a `DatasetError` names every bad entry."""
        if not isinstance(results, list):
            raise DatasetError(
                f"{source}: must be a JSON list of results, got {type(results).__name__}"
            )
        if not results:
            raise DatasetError(f"{source}: no predictions (empty list)")
        known_images = set(gt.image_ids.tolist())
        use_bbox = isinstance(results[0], Mapping) and bool(results[0].get("bbox"))
        problems: list[Problem] = []
        rows: dict[int, list[tuple[int, int, list[float], float, float]]] = {}
        for i, r in enumerate(results):
            row = _check_result(i, r, gt, known_images, use_bbox, source, problems)
            if row is not None:
                rows.setdefault(row[0], []).append(row[1:])
        if problems:
            raise DatasetError(_summary(source, problems, len(results)), problems)
        cats = {}
        for cid, entries in rows.items():
            k = gt.categories[cid].schema.num_keypoints
            idx = np.array([e[0] for e in entries], dtype=np.int64)
            img = np.array([e[1] for e in entries], dtype=np.int64)
            kp = np.array([e[2] for e in entries], dtype=np.float64).reshape(-1, k, 3)
            score = np.array([e[3] for e in entries], dtype=np.float64)
            area = np.array([e[4] for e in entries], dtype=np.float64)
            if not use_bbox:
                area = _extent_area(kp)
            cats[cid] = CategoryPred(
                cid, np.searchsorted(gt.image_ids, img), idx + 1, kp, score, area
            )
        return cls(cats)


def _extent_area(kp: np.ndarray) -> np.ndarray:
    """(x1 - x0) * (y1 - y0) over all keypoints, as pycocotools' `loadRes` computes it."""
    if len(kp) == 0:
        return np.zeros(0)
    x, y = kp[..., 0], kp[..., 1]
    return (x.max(axis=1) - x.min(axis=1)) * (y.max(axis=1) - y.min(axis=1))


def _check_result(
    i: int,
    r: Any,
    gt: GroundTruth,
    known_images: set[int],
    use_bbox: bool,
    source: str,
    problems: list[Problem],
) -> tuple[int, int, int, list[float], float, float] | None:
    """(category_id, index, image_id, keypoints, score, bbox area) or None after a problem."""

    def bad(code: str, msg: str, fld: str) -> None:
        iid = r.get("image_id") if isinstance(r, Mapping) else None
        problems.append(Problem(code, f"entry {i}: {msg}", source, image_id=iid, field=fld))

    if not isinstance(r, Mapping):
        bad("result-type", f"must be an object, got {type(r).__name__}", f"[{i}]")
        return None
    missing = [f for f in ("image_id", "category_id", "keypoints", "score") if f not in r]
    if missing:
        bad("missing-field", f"missing {', '.join(missing)}", missing[0])
        return None
    iid, cid, kp, score = r["image_id"], r["category_id"], r["keypoints"], r["score"]
    # ids are integers: a list is not hashable, and `true` is not image 1
    if type(iid) is not int or iid not in known_images:
        bad("unknown-image", f"unknown image_id {quoted(iid)}", "image_id")
        return None
    if type(cid) is not int or cid not in gt.categories:
        bad(
            "unknown-category",
            f"unknown category_id {quoted(cid)} (known: {sorted(gt.categories)})",
            "category_id",
        )
        return None
    if not is_number(score) or not math.isfinite(score):
        bad("score", f"score must be a finite number, got {score!r}", "score")
        return None
    k = gt.categories[cid].schema.num_keypoints
    if not isinstance(kp, list) or len(kp) != 3 * k:
        n = len(kp) if isinstance(kp, list) else type(kp).__name__
        bad(
            "kpt-length",
            f"keypoints has {n} values, expected 3*K = {3 * k} for category {cid}",
            "keypoints",
        )
        return None
    if not all(is_number(v) and math.isfinite(v) for v in kp):
        bad("non-finite", "keypoints must be finite numbers", "keypoints")
        return None
    area = 0.0
    if use_bbox:
        bb = r.get("bbox")
        finite = isinstance(bb, list) and len(bb) == 4 and all(is_number(v) for v in bb)
        if not finite or not all(math.isfinite(v) and 0 <= v <= MAX_COORDINATE for v in bb[2:]):
            bad(
                "bbox-format",
                "the first result has a bbox, so every result needs [x, y, w, h] with a size "
                f"in [0, 1e6], got {quoted(bb)}",
                "bbox",
            )
            return None
        area = float(bb[2]) * float(bb[3])
    return cid, i, iid, kp, float(score), area


def _summary(source: str, problems: list[Problem], total: int) -> str:
    shown = "; ".join(p.message + f" [{p.code}]" for p in problems[:SHOWN_PROBLEMS])
    more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    return f"{source}: {len(problems)} of {total} predictions are invalid: {shown}{more}"


def load_results(path: str | Path) -> list[Any]:
    """Read a COCO results JSON file; empty or malformed files are a `DatasetError`."""
    from posekit.data.coco import load_json

    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DatasetError(f"{path}: empty file (expected a JSON list of predictions)")
    data = load_json(path)
    if not isinstance(data, list):
        raise DatasetError(f"{path}: must be a JSON list of results, got {type(data).__name__}")
    return data


def resolve_file_names(
    results: list[Any], ds: KeypointDataset, *, source: str = "predictions"
) -> list[Any]:
    """Results that name their image by `file_name` (as `posekit predict --save-json` writes
    them) get the dataset's `image_id` for it, matched on the relative path, else on the base
    name when that is unique; a file name the dataset lacks is a `DatasetError`."""
    if not any(isinstance(r, Mapping) and "file_name" in r for r in results):
        return results
    by_path = {Path(im.file_name).as_posix(): im.id for im in ds.images}
    base_counts: dict[str, int] = {}
    for im in ds.images:
        base_counts[Path(im.file_name).name] = base_counts.get(Path(im.file_name).name, 0) + 1
    by_base = {
        Path(im.file_name).name: im.id
        for im in ds.images
        if base_counts[Path(im.file_name).name] == 1
    }
    problems: list[Problem] = []
    out = []
    for i, r in enumerate(results):
        if not isinstance(r, Mapping) or "file_name" not in r:
            out.append(r)
            continue
        name = Path(str(r["file_name"])).as_posix()
        iid = by_path.get(name, by_base.get(Path(name).name))
        if iid is None:
            problems.append(
                Problem(
                    "unknown-file-name",
                    f"no image {name!r} in the ground truth",
                    file=source,
                    field=f"[{i}].file_name",
                )
            )
            continue
        out.append({**r, "image_id": iid})
    if problems:
        raise DatasetError(_summary(source, problems, len(results)), problems)
    return out


def dump_results(results: list[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(results))
    return path
