"""Which person in each camera is the same person: every combination of one person (or
none) per camera is triangulated at once, and the combinations whose views agree are kept.

Per frame, a combination is scored by the mean reprojection error of its keypoints (each
solved by the confidence-weighted DLT from the views it has). A combination is acceptable
when that error is at most `max_error` pixels; among acceptable ones the most cameras win,
then the least error (Pose2Sim's single-person rule, applied to the whole body rather than
one tracked keypoint). The best is taken, its people leave the pool, and again, until
nothing acceptable is left. People are then linked from frame to frame by their 3D positions
(the Hungarian assignment on the mean keypoint distance), so each keeps an id; asked for
fewer people than were found, the ones seen longest by the most cameras are kept (one: the
subject of a single-person recording, whoever else walks through).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from posekit.threed.cameras import Camera, CameraRig
from posekit.threed.triangulate import triangulate
from posekit.threed.views import View
from posekit.utils.errors import UserError

#: combinations scored per batch (bounds the memory of the batched solve)
_BATCH = 1 << 14
#: the most combinations scored at once per frame ((people + 1) ** cameras); more people
#: in more cameras are associated camera by camera instead (`_grow_clusters`)
MAX_COMBINATIONS = 1 << 12


@dataclass
class Synchronised:
    """The views of a rig on common frame numbers."""

    frames: np.ndarray  # (F,) frame numbers
    keypoints: np.ndarray  # (C, F, P, K, 3) per camera, NaN where not seen
    ids: np.ndarray  # (C, F, P) each view's track ids (-1: none)
    # (F,) seconds, from the first camera whose view gives a time for the frame (NaN: none)
    times: np.ndarray | None = None


def check_names(rig: CameraRig, names: list[str]) -> None:
    """One line when a view is named after no camera of `rig`."""
    unknown = sorted(set(names) - set(rig.names))
    if unknown:
        raise UserError(
            f"views {', '.join(unknown)} are not cameras of the calibration "
            f"({', '.join(rig.names)})"
        )


#: the share of a view's keypoints that may fall outside its camera's image (detectors place
#: some just past the border) before the view and the camera are taken for different ones
OUTSIDE_SHARE = 0.2


def check_inside(camera: Camera, view: View) -> None:
    """One line when much of a view lies outside its camera's image (beyond a tenth of the
    image past each border): another camera's keypoints, or a calibration of another size
    (a portrait video calibrated as landscape)."""
    xy = view.keypoints[..., :2].reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(-1)]
    if not len(xy):
        return
    w, h = camera.size
    margin = 0.1 * np.array([w, h])
    outside = ((xy < -margin) | (xy > np.array([w, h]) + margin)).any(-1).mean()
    if outside > OUTSIDE_SHARE:
        span = np.ptp(xy, axis=0)
        raise UserError(
            f"view {view.name}: {outside:.0%} of its keypoints lie outside camera "
            f"{camera.name}'s {w}x{h} image (they span {span[0]:.0f}x{span[1]:.0f} px): is "
            "the view of that camera, and the calibration of its video size?"
        )


def synchronise(rig: CameraRig, views: list[View]) -> Synchronised:
    """The views (one per camera of `rig`, any order) on the frames at least two of them
    share; one line when names do not match the rig or the views share no frames."""
    by_name = {v.name: v for v in views}
    check_names(rig, list(by_name))
    missing = [n for n in rig.names if n not in by_name]
    if len(rig.names) - len(missing) < 2:
        raise UserError(
            f"triangulation needs at least 2 views; the calibration's cameras are "
            f"{', '.join(rig.names)}, the views {', '.join(by_name) or 'none'}"
        )
    ordered = [by_name.get(n) for n in rig.names]
    for camera, view in zip(rig.cameras, ordered, strict=True):
        if view is not None:
            check_inside(camera, view)
    counts: dict[int, int] = {}
    for v in ordered:
        for f in v.frames if v is not None else []:
            counts[int(f)] = counts.get(int(f), 0) + 1
    frames = np.array(sorted(f for f, c in counts.items() if c >= 2), dtype=np.int64)
    if not len(frames):
        spans = ", ".join(f"{v.name} {v.frames.min()}-{v.frames.max()}" for v in views)
        raise UserError(f"no frame is seen by two views ({spans}): check the offsets")
    people = max(v.keypoints.shape[1] for v in views)
    k = views[0].keypoints.shape[2]
    keypoints = np.full((len(ordered), len(frames), people, k, 3), np.nan)
    ids = np.full((len(ordered), len(frames), people), -1, dtype=np.int64)
    times = np.full(len(frames), np.nan)
    for c, v in enumerate(ordered):
        if v is None:
            continue
        at = np.searchsorted(frames, v.frames)
        inside = (at < len(frames)) & (frames[np.minimum(at, len(frames) - 1)] == v.frames)
        n = v.keypoints.shape[1]
        keypoints[c, at[inside], :n] = v.keypoints[inside]
        ids[c, at[inside], :n] = v.ids[inside]
        if v.times is not None:
            rows = at[inside]
            times[rows] = np.where(np.isnan(times[rows]), v.times[inside], times[rows])
    return Synchronised(frames, keypoints, ids, times)


@dataclass
class Association:
    """For each frame and person (3D id), the person index chosen in each camera."""

    ids: list[int]  # the people's 3D ids, in the order of axis 1 below
    chosen: np.ndarray  # (F, N, C) index into the view's people, -1: not in that camera


def associate(
    rig: CameraRig,
    sync: Synchronised,
    *,
    people: int | None = 1,
    min_confidence: float = 0.3,
    max_error: float = 20.0,
    max_step: float | None = None,
) -> Association:
    """Assign each camera's people to 3D people, frame by frame (see the module docstring).
    `people`: how many to keep (1: a single-person recording's subject; None: all).
    `max_step`: the farthest (in the rig's unit) a person's mean keypoint may move between
    frames and keep its id (default: unbounded)."""
    n_cams, _, n_people = sync.keypoints.shape[:3]
    options = n_people + 1  # each person, or none (the last)
    if options**n_cams > MAX_COMBINATIONS:
        chosen = _grow_clusters(rig, sync, min_confidence, max_error)
    else:
        chosen = _best_combinations(rig, sync, min_confidence, max_error)
    if chosen.shape[1] == 0:
        return Association([], chosen)
    # a camera with fewer people than the most is padded: an empty slot is "not seen"
    f, n, c = np.nonzero(chosen >= 0)
    empty = ~np.isfinite(sync.keypoints[c, f, chosen[f, n, c]]).any((-1, -2))
    chosen[f[empty], n[empty], c[empty]] = -1
    linked = _link(rig, sync, chosen, min_confidence, max_step)
    if people is None or len(linked.ids) <= people:
        return linked
    # the people seen longest by the most cameras
    coverage = (linked.chosen >= 0).sum((0, 2))
    keep = np.sort(np.argsort(-coverage, kind="stable")[:people])
    return Association([linked.ids[i] for i in keep], linked.chosen[:, keep])


def _best_combinations(
    rig: CameraRig, sync: Synchronised, min_confidence: float, max_error: float
) -> np.ndarray:
    """(F, N, C) the people chosen per round by scoring every combination at once."""
    n_cams, n_frames, n_people = sync.keypoints.shape[:3]
    options = n_people + 1
    combos = np.array(list(itertools.product(range(options), repeat=n_cams)))  # (M, C)
    combos = combos[(combos < n_people).sum(1) >= 2]
    error, views = _score(rig, sync, combos, min_confidence)  # (F, M)
    acceptable = np.isfinite(error) & (error <= max_error)
    picks: list[np.ndarray] = []  # per round: (F, C) chosen person (-1 none)
    taken = np.zeros((n_frames, n_cams, options), dtype=bool)
    for _ in range(n_people):
        free = ~taken[:, np.arange(n_cams), combos].any(-1)  # (F, M): no person used already
        ok = acceptable & free
        if not ok.any():
            break
        # most views first, then least error
        rank = np.where(ok, views * 1e6 - np.minimum(error, 1e5), -np.inf)
        best = rank.argmax(1)
        found = ok[np.arange(n_frames), best]
        chosen = np.where(found[:, None], combos[best], n_people)  # (F, C)
        taken[np.arange(n_frames)[:, None], np.arange(n_cams), chosen] = True
        taken[..., n_people] = False  # "none" stays free for every camera
        picks.append(np.where(chosen == n_people, -1, chosen))
    if not picks:
        return np.full((n_frames, 0, n_cams), -1, dtype=np.int64)
    return np.stack(picks, axis=1)  # (F, N, C)


def _grow_clusters(
    rig: CameraRig, sync: Synchronised, min_confidence: float, max_error: float
) -> np.ndarray:
    """(F, N, C) people of crowded frames, where the combinations would be too many: per
    frame, camera by camera, each camera's people are matched to the people found so far
    (the Hungarian assignment on the reprojection error of triangulating them together,
    those above `max_error` left apart) and the unmatched start new ones; people that end up
    seen by one camera only are dropped."""
    n_cams, n_frames, n_people = sync.keypoints.shape[:3]
    found: list[list[np.ndarray]] = []
    for f in range(n_frames):
        clusters: list[np.ndarray] = []  # (C,) person index per camera, -1 unseen
        for c in range(n_cams):
            present = [p for p in range(n_people) if np.isfinite(sync.keypoints[c, f, p]).any()]
            if not present:
                continue
            if clusters:
                # every (cluster, person) pair as one "frame" of a triangulation
                # every (cluster, person) pair as one row, gathered as `pick` gathers frames
                rows = np.repeat(np.stack(clusters), len(present), axis=0)  # (R, C)
                rows[:, c] = np.tile(present, len(clusters))
                this_frame = Synchronised(
                    np.repeat(sync.frames[f], len(rows)),
                    sync.keypoints[:, [f] * len(rows)],
                    sync.ids[:, [f] * len(rows)],
                )
                px, conf = pick(this_frame, rows)
                px = np.where((conf >= min_confidence)[..., None], px, np.nan)
                solved = triangulate(rig, px, conf, min_confidence=min_confidence)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    error = np.nanmean(solved.error, axis=-1)
                cost = np.nan_to_num(error, nan=np.inf).reshape(len(clusters), len(present))
                rows, cols = linear_sum_assignment(np.minimum(cost, 1e12))
                joined = set()
                for r, q in zip(rows, cols, strict=True):
                    if cost[r, q] <= max_error:
                        clusters[r][c] = present[q]
                        joined.add(present[q])
                present = [p for p in present if p not in joined]
            for p in present:
                fresh = np.full(n_cams, -1, dtype=np.int64)
                fresh[c] = p
                clusters.append(fresh)
        found.append([cl for cl in clusters if (cl >= 0).sum() >= 2])
    most = max((len(people) for people in found), default=0)
    chosen = np.full((n_frames, most, n_cams), -1, dtype=np.int64)
    for f, people in enumerate(found):
        for slot, cluster in enumerate(people):
            chosen[f, slot] = cluster
    return chosen


def _score(
    rig: CameraRig, sync: Synchronised, combos: np.ndarray, min_confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """(F, M) mean reprojection error of each combination's keypoints, and the number of
    cameras that see at least one of its keypoints."""
    n_cams, n_frames, _, k = sync.keypoints.shape[:4]
    padded = np.concatenate([sync.keypoints, np.full((n_cams, n_frames, 1, k, 3), np.nan)], 2)
    # every view's pixels undistorted once, not once per combination they are in
    seen = np.isfinite(padded[..., :2]).all(-1, keepdims=True)
    flat = np.where(seen, padded[..., :2], 0.0)
    normal = np.stack([c.undistort(flat[i]) for i, c in enumerate(rig.cameras)])
    error = np.full((n_frames, len(combos)), np.nan)
    views = np.zeros((n_frames, len(combos)), dtype=np.int64)
    step = max(1, _BATCH // max(1, n_frames))
    for start in range(0, len(combos), step):
        part = combos[start : start + step]  # (m, C)
        # (C, F, m, K, 3): camera c's chosen person in each combination
        which = (np.arange(n_cams)[:, None], slice(None), part.T)
        picked = padded[which].transpose(0, 2, 1, 3, 4)
        px = picked[..., :2].reshape(n_cams, -1, k, 2)
        conf = np.nan_to_num(picked[..., 2].reshape(n_cams, -1, k), nan=0.0)
        px = np.where((conf >= min_confidence)[..., None], px, np.nan)
        normalised = list(normal[which].transpose(0, 2, 1, 3, 4).reshape(n_cams, -1, k, 2))
        solved = triangulate(rig, px, conf, min_confidence=min_confidence, normalised=normalised)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no keypoint solved
            error[:, start : start + step] = np.nanmean(solved.error, -1).reshape(n_frames, -1)
        seen = solved.views.any(1).sum(-1)  # cameras used by any keypoint
        views[:, start : start + step] = seen.reshape(n_frames, -1)
    return error, views


def _link(
    rig: CameraRig,
    sync: Synchronised,
    chosen: np.ndarray,
    min_confidence: float,
    max_step: float | None,
) -> Association:
    """Give each round's people ids that follow them from frame to frame."""
    n_frames, rounds, n_cams = chosen.shape
    centres = np.full((n_frames, rounds, 3), np.nan)
    for r in range(rounds):
        px, conf = pick(sync, chosen[:, r])
        points = triangulate(rig, px, conf, min_confidence=min_confidence).points
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            centres[:, r] = np.nanmean(points, axis=1)
    ids = np.full((n_frames, rounds), -1, dtype=np.int64)
    last: dict[int, np.ndarray] = {}  # id -> its last centre
    for f in range(n_frames):
        present = np.nonzero(np.isfinite(centres[f]).all(-1))[0]
        known = list(last)
        if known and len(present):
            cost = np.linalg.norm(
                centres[f, present][:, None] - np.stack([last[i] for i in known]), axis=-1
            )
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if max_step is None or cost[r, c] <= max_step:
                    ids[f, present[r]] = known[c]
        for r in present:
            if ids[f, r] < 0:
                ids[f, r] = len(last) + 1 if not last else max(last) + 1
            last[int(ids[f, r])] = centres[f, r]
    order = sorted(int(i) for i in np.unique(ids[ids >= 0]))
    out = np.full((n_frames, len(order), n_cams), -1, dtype=np.int64)
    for slot, person in enumerate(order):
        f, r = np.nonzero(ids == person)
        out[f, slot] = chosen[f, r]
    return Association(order, out)


def pick(sync: Synchronised, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, F, K, 2) pixels and (C, F, K) confidences of one person, `chosen` (F, C) giving
    its index in each camera (-1: not seen there)."""
    n_cams, n_frames, _, k = sync.keypoints.shape[:4]
    px = np.full((n_cams, n_frames, k, 2), np.nan)
    conf = np.zeros((n_cams, n_frames, k))
    f, c = np.nonzero(chosen >= 0)
    px[c, f] = sync.keypoints[c, f, chosen[f, c], :, :2]
    conf[c, f] = np.nan_to_num(sync.keypoints[c, f, chosen[f, c], :, 2], nan=0.0)
    return px, conf
