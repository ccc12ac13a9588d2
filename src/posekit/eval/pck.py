"""Distance metrics on matched instances: PCK (bbox, head, torso), its AUC, EPE, NME.

Ground truths and predictions are paired by the COCO greedy matching with no OKS threshold:
detections in descending score order each take the free ground truth of their image with the
highest OKS. This never looks past what AP itself uses (a lower-scored detection cannot replace
a higher-scored one), and for single-animal data it pairs the top detection with the animal,
as DeepLabCut does. Ground truths that are crowds or have no labelled keypoint do not count;
a ground truth left without a detection counts its keypoints as misses for PCK and is left out
of distance means (it has no distance), and is reported in `unmatched`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posekit.eval.cocoeval import EvalParams, match_category
from posekit.eval.inputs import CategoryGT, CategoryPred

#: "Any overlap": the smallest OKS threshold that still needs a positive OKS.
_ANY_OKS = np.array([np.finfo(np.float64).tiny])
#: Default torso normaliser per preset: the diagonal from the left shoulder to the right hip.
TORSO_PAIR = ("left_shoulder", "right_hip")
#: Default NME normaliser for face68: the outer eye corners (300-W's inter-ocular distance).
INTEROCULAR_PAIR = ("right_eye_0", "left_eye_3")


@dataclass
class InstancePairs:
    """Matched (ground truth, detection) pairs of one category and their distances."""

    category_id: int
    image_index: np.ndarray  # (P,)
    gt_rows: np.ndarray  # (P,) rows into the category's ground truth
    dt_rows: np.ndarray  # (P,) rows into its predictions; -1 for ground truth left unmatched
    oks: np.ndarray  # (P,) 0 for unmatched
    dist: np.ndarray  # (P, K) pixel distance; NaN where the keypoint is unlabelled or unmatched
    labelled: np.ndarray  # (P, K) bool
    conf: np.ndarray  # (P, K) predicted keypoint confidence (NaN when unmatched)


def pair_instances(
    gt: CategoryGT, pred: CategoryPred | None, sigmas: np.ndarray, max_dets: int
) -> InstancePairs:
    """Pair every counted ground truth with at most one detection (see the module docstring)."""
    params = EvalParams(max_dets=max_dets, area_ranges=(("all", 0.0, np.inf),),
                        oks_thresholds=_ANY_OKS)  # fmt: skip
    m = match_category(gt, pred, sigmas, params)
    counted = ~(gt.iscrowd | (gt.num_keypoints == 0))
    dt_rows = np.full(len(gt.ids), -1, np.int64)
    oks = np.zeros(len(gt.ids))
    matched = np.flatnonzero(m.dt_gt_id[0, 0] != 0)
    if len(matched):
        by_id = np.argsort(gt.ids, kind="stable")
        g = by_id[np.searchsorted(gt.ids[by_id], m.dt_gt_id[0, 0, matched])]
        dt_rows[g] = m.dt_index[matched]
        oks[g] = m.dt_oks[matched]
    rows = np.flatnonzero(counted)
    labelled = gt.keypoints[rows, :, 2] > 0
    dist = np.full(labelled.shape, np.nan)
    conf = np.full(labelled.shape, np.nan)
    has = dt_rows[rows] >= 0
    if has.any() and pred is not None:
        d = pred.keypoints[dt_rows[rows[has]]]
        g = gt.keypoints[rows[has]]
        dist[has] = np.hypot(d[..., 0] - g[..., 0], d[..., 1] - g[..., 1])
        conf[has] = d[..., 2]
    dist[~labelled] = np.nan
    return InstancePairs(gt.category_id, gt.image_index[rows], rows, dt_rows[rows], oks[rows],
                         dist, labelled, conf)  # fmt: skip


def pck(dist: np.ndarray, labelled: np.ndarray, norm: np.ndarray, alpha: float) -> np.ndarray:
    """Per-keypoint PCK: share of labelled keypoints within alpha x norm of the ground truth.

    `dist` is (P, K) with NaN for misses (unmatched instances count as wrong); `norm` is (P,)
    and instances whose norm is NaN or not positive are left out. Returns (K,), NaN for a
    keypoint with no labelled instance.
    """
    use = labelled & (np.isfinite(norm) & (norm > 0))[:, None]
    hit = use & (np.nan_to_num(dist, nan=np.inf) <= alpha * norm[:, None])
    n = use.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, hit.sum(axis=0) / np.maximum(n, 1), np.nan)


def pck_overall(dist: np.ndarray, labelled: np.ndarray, norm: np.ndarray, alpha: float) -> float:
    """PCK over all labelled keypoints together (NaN when there are none)."""
    use = labelled & (np.isfinite(norm) & (norm > 0))[:, None]
    if not use.any():
        return float("nan")
    hit = use & (np.nan_to_num(dist, nan=np.inf) <= alpha * norm[:, None])
    return float(hit.sum() / use.sum())


def pck_auc(
    dist: np.ndarray, labelled: np.ndarray, norm: np.ndarray, max_alpha: float, steps: int = 21
) -> float:
    """Area under the PCK(alpha) curve for alpha in [0, max_alpha], normalised to [0, 1]."""
    alphas = np.linspace(0.0, max_alpha, steps)
    curve = np.array([pck_overall(dist, labelled, norm, a) for a in alphas])
    if np.isnan(curve).all():
        return float("nan")
    return float(np.trapezoid(curve, alphas) / max_alpha)


def pair_norm(gt: CategoryGT, rows: np.ndarray, names: tuple[str, str]) -> np.ndarray | None:
    """Distance between two named ground-truth keypoints per instance (NaN if either is
    unlabelled); None when the schema lacks one of the names."""
    kp = gt.schema.keypoints
    if names[0] not in kp or names[1] not in kp:
        return None
    a, b = gt.keypoints[rows, kp.index(names[0])], gt.keypoints[rows, kp.index(names[1])]
    d = np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1])
    d[(a[:, 2] <= 0) | (b[:, 2] <= 0)] = np.nan
    return d


def nme(dist: np.ndarray, labelled: np.ndarray, norm: np.ndarray) -> float:
    """Mean over instances of (mean labelled keypoint distance / norm), matched instances with a
    valid normaliser only (NME as reported for 300-W with the inter-ocular distance)."""
    ok = np.isfinite(norm) & (norm > 0) & np.isfinite(dist).any(axis=1)
    if not ok.any():
        return float("nan")
    with np.errstate(invalid="ignore"):
        per = np.nanmean(np.where(labelled[ok], dist[ok], np.nan), axis=1) / norm[ok]
    return float(np.nanmean(per))
