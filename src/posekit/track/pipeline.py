"""Tracking on top of prediction: results in, results with `boxes.id` (and smoothed keypoints)
out. A plain generator over `Results`, so it composes with any source of predictions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from posekit.predict.results import Boxes, Keypoints, Results
from posekit.track.smoothing import TrackSmoother
from posekit.track.tracker import Tracker


def tracked(
    results: Iterable[Results],
    tracker: Tracker,
    *,
    smoother: TrackSmoother | None = None,
    conf: float,  # `PredictConfig.conf`, which `Model.track` passes
    fps: float = 30.0,
) -> Iterator[Results]:
    """Feed each frame's detections to `tracker` and yield the frame's confirmed tracks (with
    `boxes.id`) whose detection confidence reaches `conf`; lower-scored detections still help
    the tracker keep ids through occlusions. With `smoother`, keypoints are One-Euro filtered
    per track, timed by the frames' timestamps (`frame / fps` where a source gives none)."""
    for r in results:
        ids = tracker.update(r.boxes.xyxy, r.boxes.conf, r.boxes.cls, r.keypoints.data)
        keep = (ids >= 0) & (r.boxes.conf >= conf)
        kp = r.keypoints.data[keep]
        if smoother is not None and keep.any():
            t = r.timestamp if r.timestamp is not None else (r.frame or 0) / fps
            kp = smoother(ids[keep], kp, t)
        b = r.boxes
        boxes = Boxes(b.xyxy[keep], b.conf[keep], b.cls[keep], b.orig_shape, ids[keep])
        k = r.keypoints
        yield replace(r, boxes=boxes, keypoints=Keypoints(kp, k.orig_shape, k.names, k.kpt_conf))
