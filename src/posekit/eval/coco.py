"""COCO keypoint evaluation over all categories: the ten statistics, PR arrays and matches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from posekit.eval.cocoeval import (
    STAT_NAMES,
    CategoryMatches,
    EvalParams,
    accumulate_category,
    match_category,
    summarize,
)
from posekit.eval.inputs import CategoryGT, GroundTruth, Predictions
from posekit.utils.errors import UserError


@dataclass
class CocoKeypointResult:
    """COCO keypoint evaluation: `stats` (AP, AP50, ... ARl) and the arrays behind them.

    `precision` is (T, R, K, A) and `recall` (T, K, A) for OKS thresholds T, recall points R,
    categories K (`category_ids`) and area ranges A (`area_labels`); -1 marks empty cells.
    """

    stats: dict[str, float]
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    category_ids: list[int]
    area_labels: list[str]
    oks_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    matches: dict[int, CategoryMatches]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.stats)


def evaluate_coco(
    gt: GroundTruth,
    pred: Predictions,
    *,
    params: EvalParams | None = None,
    sigmas: Mapping[int, Sequence[float]] | Sequence[float] | None = None,
) -> CocoKeypointResult:
    """COCO keypoint AP/AR, identical to pycocotools' `COCOeval(iouType="keypoints")`.

    Args:
        gt: ground truth (`GroundTruth.from_dataset(ds)`).
        pred: predictions (`Predictions.from_coco_results(results, gt)`).
        params: max detections, area ranges and thresholds (pycocotools' defaults).
        sigmas: OKS sigmas for every category (a list) or per category id; by default each
            category's schema sigmas (COCO-17: the published ones).

    Example:
        >>> r = evaluate_coco(gt, Predictions.from_coco_results(results, gt))  # doctest: +SKIP
        >>> r.stats["AP"]                                                       # doctest: +SKIP
    """
    params = params or EvalParams()
    cat_ids = sorted(gt.categories)
    T, R = len(params.oks_thresholds), len(params.recall_thresholds)
    A = len(params.area_ranges)
    precision = -np.ones((T, R, len(cat_ids), A, 1))
    recall = -np.ones((T, len(cat_ids), A, 1))
    scores = -np.ones((T, R, len(cat_ids), A, 1))
    matches = {}
    for k, cid in enumerate(cat_ids):
        cat = gt.categories[cid]
        s = _sigmas_for(cid, cat, sigmas)
        m = match_category(cat, pred.categories.get(cid), s, params)
        matches[cid] = m
        p, r, sc = accumulate_category(m, params)
        precision[:, :, k, :, 0], recall[:, k, :, 0], scores[:, :, k, :, 0] = p, r, sc
    stats = summarize(precision, recall, params)
    return CocoKeypointResult(
        stats,
        precision[..., 0],
        recall[..., 0],
        scores[..., 0],
        cat_ids,
        [a[0] for a in params.area_ranges],
        params.oks_thresholds,
        params.recall_thresholds,
        matches,
    )


def _sigmas_for(
    cid: int, cat: CategoryGT, sigmas: Mapping[int, Sequence[float]] | Sequence[float] | None
) -> np.ndarray:
    if sigmas is None:
        out = cat.schema.sigmas_array
    elif isinstance(sigmas, Mapping):
        out = np.asarray(sigmas.get(cid, cat.schema.sigmas), dtype=np.float64)
    else:
        out = np.asarray(sigmas, dtype=np.float64)
    if out.shape != (cat.schema.num_keypoints,):
        raise UserError(
            f"category {cid}: {out.size} sigmas for {cat.schema.num_keypoints} keypoints"
        )
    return out


def per_keypoint_ap(
    gt: GroundTruth,
    pred: Predictions,
    *,
    params: EvalParams | None = None,
    sigmas: Mapping[int, Sequence[float]] | Sequence[float] | None = None,
) -> dict[int, np.ndarray]:
    """AP per keypoint: OKS computed on one keypoint at a time (its own sigma). A ground truth
    whose keypoint is unlabelled is ignored for that keypoint. Returns {category_id: (K,)}."""
    params = params or EvalParams()
    out = {}
    for cid, cat in gt.categories.items():
        s = _sigmas_for(cid, cat, sigmas)
        p = pred.categories.get(cid)
        aps = np.full(cat.schema.num_keypoints, -1.0)
        for j in range(cat.schema.num_keypoints):
            g1 = _one_keypoint_gt(cat, j)
            p1 = replace(p, keypoints=p.keypoints[:, j : j + 1]) if p is not None else None
            one = GroundTruth(gt.image_ids, {cid: g1})
            r = evaluate_coco(
                one,
                Predictions({cid: p1} if p1 is not None else {}),
                params=params,
                sigmas={cid: s[j : j + 1]},
            )
            aps[j] = r.stats["AP"]
        out[cid] = aps
    return out


def _one_keypoint_gt(cat: CategoryGT, j: int) -> CategoryGT:
    kp = cat.keypoints[:, j : j + 1]
    schema = cat.schema
    from posekit.schema import KeypointSchema

    one = KeypointSchema(schema.name, (schema.keypoints[j],), (), (0,), (schema.sigmas[j],))
    return replace(cat, schema=one, keypoints=kp, num_keypoints=(kp[:, 0, 2] > 0).astype(np.int64))


__all__ = ["STAT_NAMES", "CocoKeypointResult", "evaluate_coco", "per_keypoint_ap"]
