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
#: Dense cells (images x detections x ground truths) matched together: large enough to spread
#: the per-rank numpy overhead, small enough to keep memory bounded for any dataset size.
CHUNK_CELLS = 1 << 16
#: OKS pairs computed together: (pairs, K) temporaries stay below glibc's mmap threshold, so
#: they are reused from the heap instead of being page-faulted in again for every batch.
PAIR_BATCH = 1 << 14


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
    dt_oks: np.ndarray  # (D,) OKS with the ground truth matched at the first area range and
    # threshold (0 when unmatched); the other cells only need the ids
    gt_ignore: np.ndarray  # (A, N) bool
    gt_dt_id: np.ndarray  # (A, T, N) matched detection id, 0 when unmatched
    gt_best_oks: np.ndarray  # (N,) best OKS of any kept detection of the same image


class _Columns:
    """Keypoint coordinates as contiguous (rows, K) arrays, gathered once per category, and the
    OKS of (detection, ground truth) pairs exactly as pycocotools' `computeOks`: the same
    operations in the same order, so the values are bit-identical."""

    def __init__(self, gt: CategoryGT, pred: CategoryPred) -> None:
        self.gx, self.gy = np.ascontiguousarray(gt.keypoints[..., 0]), gt.keypoints[..., 1].copy()
        self.gvis = gt.keypoints[..., 2] > 0
        self.k1 = self.gvis.sum(axis=1)
        self.dx, self.dy = pred.keypoints[..., 0].copy(), pred.keypoints[..., 1].copy()
        self.bbox, self.area = gt.bbox, gt.area

    def oks(self, gi: np.ndarray, di: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
        """OKS of pairs, in batches that keep temporaries small (see `PAIR_BATCH`)."""
        if len(gi) <= PAIR_BATCH:
            return self._oks(gi, di, sigmas)
        return np.concatenate([
            self._oks(gi[s : s + PAIR_BATCH], di[s : s + PAIR_BATCH], sigmas)
            for s in range(0, len(gi), PAIR_BATCH)
        ])  # fmt: skip

    def _oks(self, gi: np.ndarray, di: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
        k = self.gx.shape[1]
        var = (sigmas * 2) ** 2
        dx = self.dx[di] - self.gx[gi]  # (P, K)
        dy = self.dy[di] - self.gy[gi]
        k1 = self.k1[gi]
        no_label = k1 == 0
        if no_label.any():  # distance to a box twice the size of the ground truth's
            bb = self.bbox[gi[no_label]]
            x0, x1 = bb[:, 0] - bb[:, 2], bb[:, 0] + bb[:, 2] * 2
            y0, y1 = bb[:, 1] - bb[:, 3], bb[:, 1] + bb[:, 3] * 2
            xd, yd = self.dx[di[no_label]], self.dy[di[no_label]]
            dx[no_label] = np.maximum(0, x0[:, None] - xd) + np.maximum(0, xd - x1[:, None])
            dy[no_label] = np.maximum(0, y0[:, None] - yd) + np.maximum(0, yd - y1[:, None])
        # e = (dx**2 + dy**2) / vars / (area + eps) / 2, in place; a coordinate of 1e308
        # overflows to an infinite distance, whose similarity is 0 (as pycocotools' is)
        with np.errstate(over="ignore", invalid="ignore"):
            np.square(dx, out=dx)
            np.square(dy, out=dy)
            dx += dy
            dx /= var
            dx /= (self.area[gi] + _EPS)[:, None]
            dx /= 2
            np.negative(dx, out=dx)
            np.exp(dx, out=dx)
        counted = self.gvis[gi]
        counted[no_label] = True
        dx *= counted
        return dx.sum(axis=1) / np.where(no_label, k, k1)


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c - 1 for each count c, concatenated: each member's position in its group."""
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


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
        dt_oks=np.zeros(D),
        gt_ignore=gt_ignore,
        gt_dt_id=np.zeros((A, T, N), np.int64),
        gt_best_oks=np.zeros(N),
    )
    if D and N:
        matcher = _Matcher(gt, pred, _Columns(gt, pred), sigmas, dt_rows, dt_rank, thr,  # type: ignore[arg-type]
                           gt_ignore, out)  # fmt: skip
        matcher.run(params.max_dets)
    if D:  # unmatched detections outside the area range are ignored
        area = pred.area[dt_rows]  # type: ignore[union-attr]
        outside = (area[None, :] < lo) | (area[None, :] > hi)  # (A, D)
        out.dt_ignore |= (out.dt_gt_id == 0) & outside[:, None, :]
    return out


@dataclass
class _Matcher:
    """Greedy matching of one category for the images that have detections and ground truth,
    in chunks of images with a similar number of ground truths (small dense arrays)."""

    gt: CategoryGT
    pred: CategoryPred
    cols: _Columns
    sigmas: np.ndarray
    dt_rows: np.ndarray
    dt_rank: np.ndarray
    thr: np.ndarray
    gt_ignore: np.ndarray
    out: CategoryMatches
    gt_order: np.ndarray = field(init=False)  # ground-truth rows sorted by image

    def run(self, max_dets: int) -> None:
        dt_img = self.pred.image_index[self.dt_rows]
        self.gt_order = np.argsort(self.gt.image_index, kind="stable")  # annotation order
        gt_img_sorted = self.gt.image_index[self.gt_order]
        images = np.intersect1d(dt_img, gt_img_sorted)
        g_start = np.searchsorted(gt_img_sorted, images, side="left")
        g_count = np.searchsorted(gt_img_sorted, images, side="right") - g_start
        d_start = np.searchsorted(dt_img, images, side="left")
        d_count = np.searchsorted(dt_img, images, side="right") - d_start
        by_size = np.argsort(g_count, kind="stable")
        g_sorted = g_count[by_size]
        pos = 0
        while pos < len(by_size):
            cells = np.arange(1, len(by_size) - pos + 1) * g_sorted[pos:] * max_dets
            n = max(1, int(np.searchsorted(cells, CHUNK_CELLS, side="right")))
            c = by_size[pos : pos + n]
            self.chunk(g_start[c], g_count[c], d_start[c], d_count[c])
            pos += n

    def chunk(
        self, g_start: np.ndarray, g_count: np.ndarray, d_start: np.ndarray, d_count: np.ndarray
    ) -> None:
        n = len(g_start)
        d_max, g_max = int(d_count.max()), int(g_count.max())
        A, T = self.gt_ignore.shape[0], len(self.thr)
        # (image slot, detection rank) and (image slot, ground-truth slot) of every member
        d_slot = np.repeat(np.arange(n), d_count)
        d_pos = np.repeat(d_start, d_count) + _ranks(d_count)
        g_slot = np.repeat(np.arange(n), g_count)
        g_pos = _ranks(g_count)
        g_rows = self.gt_order[np.repeat(g_start, g_count) + g_pos]  # in annotation order
        # all (detection, ground truth) pairs of the same image
        per_det = g_count[d_slot]  # ground truths in each detection's image
        pair_d = np.repeat(d_pos, per_det)
        first_g = np.repeat(np.cumsum(g_count) - g_count, d_count)  # per detection
        pair_g = np.repeat(first_g, per_det) + _ranks(per_det)  # index into g_rows
        oks = self.cols.oks(g_rows[pair_g], self.dt_rows[pair_d], self.sigmas)
        grid = np.full((n, d_max, g_max), -1.0)  # (image, rank, gt slot); -1: no such pair
        pair_slot = np.repeat(d_slot, per_det)
        grid[pair_slot, self.dt_rank[pair_d], g_pos[pair_g]] = oks
        np.maximum.at(self.out.gt_best_oks, g_rows[pair_g], oks)

        not_ig = np.zeros((n, A, 1, g_max), bool)  # padding slots count as ignored
        not_ig[g_slot, :, 0, g_pos] = ~self.gt_ignore[:, g_rows].T
        crowd = np.zeros((n, g_max), bool)
        crowd[g_slot, g_pos] = self.gt.iscrowd[g_rows]
        gt_id = np.zeros((n, g_max), np.int64)
        gt_id[g_slot, g_pos] = self.gt.ids[g_rows]
        det_at = np.full((n, d_max), -1, np.int64)  # position in dt_rows of (image, rank)
        det_at[d_slot, self.dt_rank[d_pos]] = d_pos

        # padding pairs hold -1 and never reach a threshold (>= 0.5)
        reach = grid[:, :, None, :] >= self.thr[None, None, :, None]  # (n, rank, T, G)
        available = np.ones((n, A, T, g_max), bool)  # not yet matched, or a crowd
        matched_by = np.zeros((n, A, T, g_max), np.int64)
        for r in range(d_max):
            ok = reach[:, r][:, None] & available  # (n, A, T, G)
            first = ok & not_ig  # not-ignored ground truths are preferred
            any_first = first.any(axis=-1)
            cand = np.where(any_first[..., None], first, ok)
            vals = np.where(cand, grid[:, r][:, None, None, :], -1.0)
            best = g_max - 1 - np.argmax(vals[..., ::-1], axis=-1)  # last maximum, as pycocotools
            sel = (any_first | ok.any(axis=-1)).nonzero()  # (image, area range, threshold)
            bi = best[sel]
            at = (*sel, bi)
            available[at] = crowd[sel[0], bi]
            det = det_at[sel[0], r]
            matched_by[at] = self.pred.ids[self.dt_rows[det]]
            self.out.dt_gt_id[sel[1], sel[2], det] = gt_id[sel[0], bi]
            self.out.dt_ignore[sel[1], sel[2], det] = ~not_ig[sel[0], sel[1], 0, bi]
            first_cell = (sel[1] == 0) & (sel[2] == 0)
            self.out.dt_oks[det[first_cell]] = grid[sel[0][first_cell], r, bi[first_cell]]
        # ground truth side: which detection id took each ground truth
        self.out.gt_dt_id[:, :, g_rows] = matched_by[g_slot, :, :, g_pos].transpose(1, 2, 0)


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
