"""Multi-object tracking by detection, in the ByteTrack family, with keypoints in the cost.

Each frame: Kalman-predict every track; match confirmed tracks to high-score detections on a
similarity that mixes box IoU and keypoint OKS (solved exactly with scipy's linear assignment);
match the still-unmatched tracks to low-score detections on IoU alone (low scores are often an
occluded object whose keypoints are unreliable); confirm tentative tracks seen `min_hits` times;
keep unmatched tracks as lost for `track_buffer` frames, so an object that vanishes for a few
frames keeps its id. Arrays in, arrays out: it works on detections from any model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from posekit.ops import oks_pairwise, pairwise_iou
from posekit.ops.instances import Instances
from posekit.schema import DEFAULT_SIGMA
from posekit.track.kalman import KalmanBoxFilter, xyah_to_xyxy, xyxy_to_xyah
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError

TRACKED, LOST = 1, 2  # a track without an id (-1) is tentative
_FORBIDDEN = 1e6


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings; the defaults suit 25-30 fps video of people or animals."""

    # detections at or above take part in the first association
    high_thresh: float = ranged(0.5, 0, 1)
    # detections below are ignored; between it and high_thresh: the second association
    low_thresh: float = ranged(0.1, 0, 1)
    new_track_thresh: float = ranged(0.6, 0, 1)  # an unmatched detection starts a track from this
    # largest cost (1 - similarity) accepted in the first association
    match_thresh: float = ranged(0.8, 0, 1)
    low_match_thresh: float = ranged(0.5, 0, 1)  # largest cost (1 - IoU) in the second association
    # largest cost for a tentative track's second sighting
    tentative_match_thresh: float = ranged(0.7, 0, 1)
    # weight of keypoint similarity against box IoU in association: (1 - w) * IoU + w * OKS
    # (IoU alone without keypoints)
    oks_weight: float = ranged(0.5, 0, 1)
    kpt_conf: float = ranged(0.3, 0, 1)  # keypoints below this confidence are left out of OKS
    track_buffer: int = ranged(30, 0, 100_000)  # frames a lost track waits to be found again
    min_hits: int = ranged(2, 1, 1000)  # sightings before a new track gets an id (1: at once)

    def __post_init__(self) -> None:
        check_ranges(self, "tracker")
        if self.low_thresh > self.high_thresh:
            raise UserError("need low_thresh <= high_thresh")


def _pairwise_oks(
    track_kp: np.ndarray,
    det_kp: np.ndarray,
    det_boxes: np.ndarray,
    sigmas: np.ndarray,
    kpt_conf: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(T, D) OKS between track and detection keypoints (scale: the detection box area, the
    project's `oks_pairwise`), and (T, D) whether any keypoint was confidently seen in both."""
    both = (track_kp[:, None, :, 2] >= kpt_conf) & (det_kp[None, :, :, 2] >= kpt_conf)
    area = (det_boxes[:, 2:] - det_boxes[:, :2]).clip(0).prod(-1)
    oks = oks_pairwise(
        torch.from_numpy(track_kp[:, None, :, :2]),
        torch.from_numpy(det_kp[None, :, :, :2]),
        torch.from_numpy(both),
        torch.from_numpy(area[None, :]),
        torch.from_numpy(sigmas),
    )
    return oks.numpy(), both.any(-1)


def assign(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the minimum-cost matching, keeping pairs with cost <= thresh."""
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = linear_sum_assignment(np.where(cost <= thresh, cost, _FORBIDDEN))
    ok = cost[rows, cols] <= thresh
    return rows[ok], cols[ok]


class Tracker:
    """ByteTrack-style tracker over boxes, scores, classes and (optionally) keypoints.

    Example:
        >>> tracker = Tracker(TrackerConfig(), sigmas=np.full(17, 0.05))
        >>> ids = tracker.update(boxes, scores, classes, keypoints)  # doctest: +SKIP
        >>> ids  # one id per detection, -1 where it is not (yet) a confirmed track
    """

    def __init__(self, config: TrackerConfig | None = None, sigmas: np.ndarray | None = None):
        self.config = config or TrackerConfig()
        self.sigmas = None if sigmas is None else np.asarray(sigmas, dtype=np.float64)
        self.kf = KalmanBoxFilter()
        self.reset()

    def reset(self) -> None:
        """Forget every track (ids start again at 1)."""
        self.frame = -1
        self.next_id = 1
        self.ids = np.zeros(0, np.int64)  # -1 while tentative
        self.state = np.zeros(0, np.int8)
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.cls = np.zeros(0, np.int64)
        self.score = np.zeros(0)
        self.hits = np.zeros(0, np.int64)
        self.last = np.zeros(0, np.int64)  # last frame seen
        self.kp: np.ndarray | None = None  # (T, K, 3) last keypoints
        self.box_at_last = np.zeros((0, 4))  # box when last seen (to shift keypoints)

    @property
    def boxes(self) -> np.ndarray:
        """(T, 4) predicted boxes of all current tracks."""
        return xyah_to_xyxy(self.mean[:, :4])

    def _similarity(
        self, t: np.ndarray, d: np.ndarray, det: Instances, use_oks: bool
    ) -> np.ndarray:
        """(len(t), len(d)) similarity; different classes get -inf."""
        pred = xyah_to_xyxy(self.mean[t, :4])
        sim = pairwise_iou(torch.from_numpy(pred), torch.from_numpy(det.boxes[d])).numpy()
        with_kp = self.kp is not None and det.keypoints is not None
        if use_oks and with_kp and self.config.oks_weight > 0:
            # keypoints move with the box: shift the last ones by the predicted displacement
            shift = (pred[:, :2] + pred[:, 2:]) / 2 - (
                self.box_at_last[t, :2] + self.box_at_last[t, 2:]
            ) / 2
            kp = self.kp[t].copy()
            kp[..., :2] += shift[:, None, :]
            sig = self._sigmas(kp.shape[1])
            oks, has = _pairwise_oks(kp, det.keypoints[d], det.boxes[d], sig, self.config.kpt_conf)
            w = self.config.oks_weight
            sim = np.where(has, (1 - w) * sim + w * oks, sim)
        same = self.cls[t][:, None] == det.classes[d][None, :]
        return np.where(same, sim, -np.inf)

    def _sigmas(self, k: int) -> np.ndarray:
        if self.sigmas is None:
            return np.full(k, DEFAULT_SIGMA)
        return self.sigmas[:k] if self.sigmas.ndim == 1 else self.sigmas[0, :k]

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        classes: np.ndarray | None = None,
        keypoints: np.ndarray | None = None,
    ) -> np.ndarray:
        """Advance one frame with its detections: boxes (N, 4) xyxy, scores (N,), classes (N,),
        keypoints (N, K, 3) x, y, confidence. Returns (N,) track ids, -1 for detections that
        are not part of a confirmed track (low scores left over, tentative new tracks)."""
        c = self.config
        self.frame += 1
        det = _detections(boxes, scores, classes, keypoints)
        out = np.full(len(det.boxes), -1, np.int64)
        if self.kp is None and det.keypoints is not None:
            self.kp = np.zeros((len(self.ids), det.keypoints.shape[1], 3))
        self.mean, self.cov = self.kf.predict(self.mean, self.cov)

        valid = det.scores >= c.low_thresh
        high = np.nonzero(valid & (det.scores >= c.high_thresh))[0]
        low = np.nonzero(valid & (det.scores < c.high_thresh))[0]
        confirmed = np.nonzero(self.ids >= 0)[0]
        tentative = np.nonzero(self.ids < 0)[0]
        matched_t: list[np.ndarray] = []
        matched_d: list[np.ndarray] = []

        # 1. confirmed tracks (tracked or lost) <-> high-score detections, IoU + OKS
        sim = self._similarity(confirmed, high, det, use_oks=True)
        r, k = assign(1 - sim, c.match_thresh)
        matched_t.append(confirmed[r])
        matched_d.append(high[k])
        left_t = np.setdiff1d(confirmed, confirmed[r])
        left_high = np.setdiff1d(high, high[k])

        # 2. tracks still unmatched that were tracked last frame <-> low-score detections, IoU
        recent = left_t[self.state[left_t] == TRACKED]
        sim = self._similarity(recent, low, det, use_oks=False)
        r, k = assign(1 - sim, c.low_match_thresh)
        matched_t.append(recent[r])
        matched_d.append(low[k])

        # 3. tentative tracks <-> remaining high-score detections; unmatched tentatives end
        sim = self._similarity(tentative, left_high, det, use_oks=True)
        r, k = assign(1 - sim, c.tentative_match_thresh)
        matched_t.append(tentative[r])
        matched_d.append(left_high[k])
        left_high = np.setdiff1d(left_high, left_high[k])

        mt, md = np.concatenate(matched_t), np.concatenate(matched_d)
        self._correct(mt, md, det)
        self.state[np.setdiff1d(left_t, mt)] = LOST

        # ids for tentative tracks seen often enough
        promote = (self.ids < 0) & (self.hits >= c.min_hits)
        self._give_ids(promote)

        out[md] = self.ids[mt]  # -1 for tentative tracks not yet confirmed

        # forget tracks lost too long and tentative ones that were not seen again (matched
        # tracks were seen this frame, so the rows above stay valid until here)
        drop = (self.state == LOST) & (self.frame - self.last > c.track_buffer)
        drop |= (self.ids < 0) & (self.last < self.frame)
        self._keep(~drop)

        # 4. new tracks from confident unmatched detections
        new = left_high[det.scores[left_high] >= c.new_track_thresh]
        if len(new):
            start = len(self.ids)
            self._add(new, det)
            if c.min_hits <= 1 or self.frame == 0:
                rows = np.arange(start, len(self.ids))
                mask = np.zeros(len(self.ids), bool)
                mask[rows] = True
                self._give_ids(mask)
                out[new] = self.ids[rows]
        return out

    # --- track table maintenance (all vectorised over tracks) ----------------------------------

    def _correct(self, t: np.ndarray, d: np.ndarray, det: Instances) -> None:
        if len(t) == 0:
            return
        self.mean[t], self.cov[t] = self.kf.update(
            self.mean[t], self.cov[t], xyxy_to_xyah(det.boxes[d])
        )
        self.state[t] = TRACKED
        self.score[t] = det.scores[d]
        self.hits[t] += 1
        self.last[t] = self.frame
        self.box_at_last[t] = det.boxes[d]
        if self.kp is not None and det.keypoints is not None:
            self.kp[t] = det.keypoints[d]

    def _give_ids(self, mask: np.ndarray) -> None:
        n = int(mask.sum())
        self.ids[mask] = np.arange(self.next_id, self.next_id + n)
        self.next_id += n

    def _keep(self, keep: np.ndarray) -> None:
        for name in ("ids", "state", "mean", "cov", "cls", "score", "hits", "last", "box_at_last"):
            setattr(self, name, getattr(self, name)[keep])
        if self.kp is not None:
            self.kp = self.kp[keep]

    def _add(self, d: np.ndarray, det: Instances) -> None:
        n = len(d)
        mean, cov = self.kf.initiate(xyxy_to_xyah(det.boxes[d]))
        self.ids = np.r_[self.ids, np.full(n, -1)]
        self.state = np.r_[self.state, np.full(n, TRACKED, np.int8)]
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.cls = np.r_[self.cls, det.classes[d]]
        self.score = np.r_[self.score, det.scores[d]]
        self.hits = np.r_[self.hits, np.ones(n, np.int64)]
        self.last = np.r_[self.last, np.full(n, self.frame)]
        self.box_at_last = np.concatenate([self.box_at_last, det.boxes[d]])
        if self.kp is not None and det.keypoints is not None:
            self.kp = np.concatenate([self.kp, det.keypoints[d]])


def _detections(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None,
    keypoints: np.ndarray | None,
) -> Instances:  # fmt: skip
    """A frame's detections as float64 `Instances` (classes default to 0; keypoints None for
    a box-only tracker)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    c = np.zeros(len(b), np.int64) if classes is None else np.asarray(classes, np.int64)
    kp = None if keypoints is None else np.asarray(keypoints, dtype=np.float64)
    if len(s) != len(b) or len(c) != len(b) or (kp is not None and len(kp) != len(b)):
        raise ValueError("boxes, scores, classes and keypoints need one row per detection")
    return Instances(boxes=b, keypoints=kp, classes=c.reshape(-1), scores=s)
