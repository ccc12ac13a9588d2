"""COCO keypoint AP/AR with the exact semantics of pycocotools' `COCOeval("keypoints")`, vectorised.

pycocotools loops in Python over images, detections, ground truths and thresholds. Here:
1. OKS is computed for every (detection, ground truth) pair of the same image at once;
2. greedy matching, which is sequential in score order within an image, runs one detection rank
   at a time (at most `max_dets` steps) for all images x area ranges x OKS thresholds together;
3. accumulation is cumulative sums over score-sorted detections for all thresholds together.
Images are processed in chunks so memory stays bounded for any dataset size.

Semantics kept from pycocotools (and tested against it): ground truths that are crowds or have
no labelled keypoint are ignored; OKS uses the ground truth's `area` and, for ground truths
without labelled keypoints, the distance to a box twice the size of theirs; detections are
sorted by score with a stable sort and cut at `max_dets` per image; a detection takes the
highest-OKS free ground truth (the last one on ties), preferring not-ignored ones; unmatched
detections outside the area range are ignored; precision is interpolated at 101 recall points;
cells without ground truth are -1 and left out of the means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posekit.eval.inputs import CategoryGT, CategoryPred

#: pycocotools' thresholds, computed the same way so that float comparisons match.
OKS_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES = (("all", 0**2, 1e5**2), ("medium", 32**2, 96**2), ("large", 96**2, 1e5**2))
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
_EPS = np.spacing(1)
#: Upper bound on dense cells (images x detections x ground truths) processed at once.
CHUNK_CELLS = 1 << 21


@dataclass(frozen=True)
class EvalParams:
    """Evaluation settings; the defaults are pycocotools' keypoint defaults."""

    max_dets: int = 20
    area_ranges: tuple[tuple[str, float, float], ...] = AREA_RANGES
    oks_thresholds: np.ndarray = field(default_factory=lambda: OKS_THRESHOLDS.copy())
    recall_thresholds: np.ndarray = field(default_factory=lambda: RECALL_THRESHOLDS.copy())


@dataclass
class CategoryMatches:
    """Matching of one category: per detection and per ground truth, for every area range a
    and OKS threshold t. Detections are in evaluation order (by image, then score)."""

    dt_index: np.ndarray  # (D,) row in the category's predictions
    dt_image: np.ndarray  # (D,) image position
    dt_score: np.ndarray  # (D,)
    dt_gt_id: np.ndarray  # (A, T, D) matched ground-truth id, 0 when unmatched
    dt_ignore: np.ndarray  # (A, T, D) bool
    dt_oks: np.ndarray  # (A, T, D) OKS with the matched ground truth (0 when unmatched)
    gt_ignore: np.ndarray  # (A, N) bool
    gt_dt_id: np.ndarray  # (A, T, N) matched detection id, 0 when unmatched
    gt_best_oks: np.ndarray  # (N,) best OKS of any kept detection of the same image


def oks_pairs(
    gt: CategoryGT, gi: np.ndarray, pred: CategoryPred, di: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """OKS of the pairs (pred row di[p], gt row gi[p]) exactly as pycocotools' `computeOks`."""
    g = gt.keypoints[gi]  # (P, K, 3)
    d = pred.keypoints[di]  # (P, K, 3)
    vis = g[..., 2] > 0  # (P, K)
    k1 = vis.sum(axis=1)
    var = (sigmas * 2) ** 2
    dx = d[..., 0] - g[..., 0]
    dy = d[..., 1] - g[..., 1]
    no_label = k1 == 0
    if no_label.any():  # distance to a box twice the size of the ground truth's
        bb = gt.bbox[gi[no_label]]
        x0, x1 = bb[:, 0] - bb[:, 2], bb[:, 0] + bb[:, 2] * 2
        y0, y1 = bb[:, 1] - bb[:, 3], bb[:, 1] + bb[:, 3] * 2
        xd, yd = d[no_label, :, 0], d[no_label, :, 1]
        dx[no_label] = np.maximum(0, x0[:, None] - xd) + np.maximum(0, xd - x1[:, None])
        dy[no_label] = np.maximum(0, y0[:, None] - yd) + np.maximum(0, yd - y1[:, None])
    e = (dx**2 + dy**2) / var / (gt.area[gi][:, None] + _EPS) / 2
    ex = np.exp(-e)
    counted = np.where(no_label[:, None], True, vis)
    return np.where(counted, ex, 0.0).sum(axis=1) / np.where(no_label, g.shape[1], k1)


def _kept_detections(pred: CategoryPred | None, max_dets: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the detections kept per image (stable sort by -score, first max_dets), in
    evaluation order (image position, then score), and their rank within the image."""
    if pred is None or len(pred.score) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((np.arange(len(pred.score)), -pred.score, pred.image_index))
    img = pred.image_index[order]
    starts = np.flatnonzero(np.r_[True, img[1:] != img[:-1]])
    counts = np.diff(np.r_[starts, len(img)])
    rank = np.arange(len(img)) - np.repeat(starts, counts)
    keep = rank < max_dets
    return order[keep], rank[keep]


def match_category(
    gt: CategoryGT, pred: CategoryPred | None, sigmas: np.ndarray, params: EvalParams
) -> CategoryMatches:
    """OKS and greedy matching of one category (pycocotools' computeOks + evaluateImg)."""
    thr = np.minimum(params.oks_thresholds, 1 - 1e-10)
    A, T = len(params.area_ranges), len(thr)
    dt_rows, dt_rank = _kept_detections(pred, params.max_dets)
    D, N = len(dt_rows), len(gt.ids)
    lo = np.array([r[1] for r in params.area_ranges])[:, None]
    hi = np.array([r[2] for r in params.area_ranges])[:, None]
    base_ignore = gt.iscrowd | (gt.num_keypoints == 0)
    gt_ignore = base_ignore[None, :] | (gt.area[None, :] < lo) | (gt.area[None, :] > hi)  # (A, N)
    out = CategoryMatches(
        dt_index=dt_rows,
        dt_image=pred.image_index[dt_rows] if pred is not None else np.zeros(0, np.int64),
        dt_score=pred.score[dt_rows] if pred is not None else np.zeros(0),
        dt_gt_id=np.zeros((A, T, D), np.int64),
        dt_ignore=np.zeros((A, T, D), bool),
        dt_oks=np.zeros((A, T, D)),
        gt_ignore=gt_ignore,
        gt_dt_id=np.zeros((A, T, N), np.int64),
        gt_best_oks=np.zeros(N),
    )
    if D and N:
        _match_images(gt, pred, sigmas, dt_rows, dt_rank, thr, gt_ignore, params, out)  # type: ignore[arg-type]
    if D:  # unmatched detections outside the area range are ignored
        area = pred.area[dt_rows]  # type: ignore[union-attr]
        outside = (area[None, :] < lo) | (area[None, :] > hi)  # (A, D)
        out.dt_ignore |= (out.dt_gt_id == 0) & outside[:, None, :]
    return out


def _match_images(
    gt: CategoryGT,
    pred: CategoryPred,
    sigmas: np.ndarray,
    dt_rows: np.ndarray,
    dt_rank: np.ndarray,
    thr: np.ndarray,
    gt_ignore: np.ndarray,
    params: EvalParams,
    out: CategoryMatches,
) -> None:
    """Greedy matching for images that have both detections and ground truth, in chunks."""
    dt_img = pred.image_index[dt_rows]
    gt_order = np.argsort(gt.image_index, kind="stable")  # annotation order within an image
    gt_img_sorted = gt.image_index[gt_order]
    images = np.intersect1d(dt_img, gt_img_sorted)
    g_start = np.searchsorted(gt_img_sorted, images, side="left")
    g_count = np.searchsorted(gt_img_sorted, images, side="right") - g_start
    d_start = np.searchsorted(dt_img, images, side="left")
    d_count = np.searchsorted(dt_img, images, side="right") - d_start
    # chunks of images with a similar number of ground truths keep the dense arrays small
    by_size = np.argsort(g_count, kind="stable")
    g_sorted = g_count[by_size]
    pos = 0
    while pos < len(by_size):
        cells = np.arange(1, len(by_size) - pos + 1) * g_sorted[pos:] * params.max_dets
        n = max(1, int(np.searchsorted(cells, CHUNK_CELLS, side="right")))
        chunk = by_size[pos : pos + n]
        _match_chunk(
            gt,
            pred,
            sigmas,
            dt_rows,
            dt_rank,
            thr,
            gt_ignore,
            gt_order,
            g_start[chunk],
            g_count[chunk],
            d_start[chunk],
            d_count[chunk],
            out,
        )
        pos += n


def _match_chunk(
    gt: CategoryGT,
    pred: CategoryPred,
    sigmas: np.ndarray,
    dt_rows: np.ndarray,
    dt_rank: np.ndarray,
    thr: np.ndarray,
    gt_ignore: np.ndarray,
    gt_order: np.ndarray,
    g_start: np.ndarray,
    g_count: np.ndarray,
    d_start: np.ndarray,
    d_count: np.ndarray,
    out: CategoryMatches,
) -> None:
    n = len(g_start)
    d_max, g_max = int(d_count.max()), int(g_count.max())
    A, T = gt_ignore.shape[0], len(thr)
    # (image slot, detection rank) and (image slot, ground-truth slot) of every member
    d_slot = np.repeat(np.arange(n), d_count)
    d_pos = np.concatenate([np.arange(s, s + c) for s, c in zip(d_start, d_count, strict=True)])
    g_slot = np.repeat(np.arange(n), g_count)
    g_pos = np.arange(len(g_slot)) - np.repeat(np.cumsum(g_count) - g_count, g_count)
    g_rows = gt_order[np.repeat(g_start, g_count) + g_pos]  # gt rows, annotation order
    # all (detection, ground truth) pairs of the same image
    pair_d = np.repeat(d_pos, g_count[d_slot])
    first_g = np.repeat(np.cumsum(g_count) - g_count, d_count)  # per detection
    within = np.arange(len(pair_d)) - np.repeat(
        np.cumsum(g_count[d_slot]) - g_count[d_slot], g_count[d_slot]
    )
    pair_g = np.repeat(first_g, g_count[d_slot]) + within  # index into g_rows
    oks = oks_pairs(gt, g_rows[pair_g], pred, dt_rows[pair_d], sigmas)
    grid = np.full((n, d_max, g_max), -1.0)  # (image, rank, gt slot); -1: no such pair
    pair_slot = np.repeat(d_slot, g_count[d_slot])
    grid[pair_slot, dt_rank[pair_d], g_pos[pair_g]] = oks
    np.maximum.at(out.gt_best_oks, g_rows[pair_g], oks)

    valid_g = np.zeros((n, g_max), bool)
    valid_g[g_slot, g_pos] = True
    ig = np.ones((A, n, g_max), bool)
    ig[:, g_slot, g_pos] = gt_ignore[:, g_rows]
    ig = ig.transpose(1, 0, 2)[:, :, None, :]  # (n, A, 1, G)
    crowd = np.zeros((n, g_max), bool)
    crowd[g_slot, g_pos] = gt.iscrowd[g_rows]
    gt_id = np.zeros((n, g_max), np.int64)
    gt_id[g_slot, g_pos] = gt.ids[g_rows]
    det_at = np.full((n, d_max), -1, np.int64)  # position in dt_rows of (image, rank)
    det_at[d_slot, dt_rank[d_pos]] = d_pos

    matched = np.zeros((n, A, T, g_max), bool)
    matched_by = np.zeros((n, A, T, g_max), np.int64)
    thr_b = thr[None, None, :, None]
    for r in range(d_max):
        has = det_at[:, r] >= 0
        o = grid[:, r, :][:, None, None, :]  # (n, 1, 1, G)
        ok = valid_g[:, None, None, :] & (o >= thr_b) & (~matched | crowd[:, None, None, :])
        ok &= has[:, None, None, None]
        first = ok & ~ig  # not-ignored ground truths are preferred
        cand = np.where(first.any(axis=-1, keepdims=True), first, ok & ig)
        vals = np.where(cand, o, -1.0)
        best = g_max - 1 - np.argmax(vals[..., ::-1], axis=-1)  # last maximum, as pycocotools
        found = cand.any(axis=-1)  # (n, A, T)
        sel = found.nonzero()
        bi = best[sel]
        matched[sel + (bi,)] = True
        det = det_at[sel[0], r]
        det_id = pred.ids[dt_rows[det]]
        matched_by[sel + (bi,)] = det_id
        out.dt_gt_id[sel[1], sel[2], det] = gt_id[sel[0], bi]
        out.dt_ignore[sel[1], sel[2], det] = ig[sel[0], sel[1], 0, bi]
        out.dt_oks[sel[1], sel[2], det] = grid[sel[0], r, bi]
    # ground truth side: which detection id took each ground truth
    out.gt_dt_id[:, :, g_rows] = matched_by[g_slot, :, :, g_pos].transpose(1, 2, 0)


def accumulate_category(
    m: CategoryMatches, params: EvalParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision (T, R, A), recall (T, A) and score-at-recall (T, R, A) of one category, -1
    where the category has no ground truth that counts (pycocotools' `accumulate`)."""
    T, R, A = len(params.oks_thresholds), len(params.recall_thresholds), len(params.area_ranges)
    precision = -np.ones((T, R, A))
    recall = -np.ones((T, A))
    scores = -np.ones((T, R, A))
    order = np.argsort(-m.dt_score, kind="mergesort")
    scores_sorted = m.dt_score[order]
    nd = len(order)
    for a in range(A):
        npig = int(np.count_nonzero(~m.gt_ignore[a]))
        if npig == 0:
            continue
        if nd == 0:
            precision[:, :, a] = recall[:, a] = scores[:, :, a] = 0.0
            continue
        dtm = m.dt_gt_id[a][:, order] != 0  # (T, D)
        dtig = m.dt_ignore[a][:, order]
        tp_sum = np.cumsum(dtm & ~dtig, axis=1).astype(float)
        fp_sum = np.cumsum(~dtm & ~dtig, axis=1).astype(float)
        rc = tp_sum / npig
        pr = tp_sum / (fp_sum + tp_sum + _EPS)
        recall[:, a] = rc[:, -1]
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # precision envelope
        for t in range(T):
            inds = np.searchsorted(rc[t], params.recall_thresholds, side="left")
            hit = inds < nd
            inds = np.minimum(inds, nd - 1)
            precision[t, :, a] = np.where(hit, pr[t, inds], 0.0)
            scores[t, :, a] = np.where(hit, scores_sorted[inds], 0.0)
    return precision, recall, scores


def summarize(precision: np.ndarray, recall: np.ndarray, params: EvalParams) -> dict[str, float]:
    """The ten COCO keypoint statistics from precision (T, R, K, A, M) and recall (T, K, A, M)."""
    labels = [r[0] for r in params.area_ranges]

    def stat(ap: bool, iou: float | None = None, area: str = "all") -> float:
        if area not in labels:
            return -1.0
        a = labels.index(area)
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == params.oks_thresholds)[0]]
        s = s[:, :, :, a, 0] if ap else s[:, :, a, 0]
        return float(np.mean(s[s > -1])) if np.any(s > -1) else -1.0

    return {
        "AP": stat(True),
        "AP50": stat(True, 0.5),
        "AP75": stat(True, 0.75),
        "APm": stat(True, area="medium"),
        "APl": stat(True, area="large"),
        "AR": stat(False),
        "AR50": stat(False, 0.5),
        "AR75": stat(False, 0.75),
        "ARm": stat(False, area="medium"),
        "ARl": stat(False, area="large"),
    }
