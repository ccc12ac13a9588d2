"""Triangulation of 2D keypoints seen by calibrated cameras, vectorised over frames x
keypoints (no Python loop over points).

Each observation is undistorted to normalised image coordinates with its camera's own model,
then every point is solved at once by the confidence-weighted direct linear transform (DLT): per
camera two rows `w (x P3 - P1)`, `w (y P3 - P2)`, the null vector of the stacked rows `A` (its
smallest right singular vector, found as the smallest eigenvector of the 4x4 `A^T A`,
batched). A view is used when its pixel is finite and its confidence is at least
`min_confidence`; a point seen by fewer than `min_views` views is missing (NaN), never
guessed. With `max_error`, a view that does not agree with the others (another person's
wrist, a swapped left and right) is left out as Pose2Sim does. Each point reports its mean
reprojection error in pixels and the cameras it used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from posekit.threed.cameras import CameraRig
from posekit.utils.errors import UserError


@dataclass
class Triangulated:
    """Points in the rig's unit and how well the views agree on them."""

    points: np.ndarray  # (F, K, 3); NaN where fewer than `min_views` views saw the point
    error: np.ndarray  # (F, K) mean reprojection error over the views used, pixels
    views: np.ndarray  # (F, K, C) bool: the cameras each point was solved from


def triangulate(
    rig: CameraRig,
    pixels: np.ndarray,
    confidence: np.ndarray | None = None,
    *,
    min_confidence: float = 0.0,
    min_views: int = 2,
    max_error: float | None = None,
    normalised: list[np.ndarray] | None = None,
) -> Triangulated:
    """The 3D points of `pixels` (C, F, K, 2), one slice per camera of `rig` in its order;
    `confidence` (C, F, K) weighs each view (default 1). With `max_error` (pixels), a point
    whose views reproject farther than that on average loses the view whose removal leaves
    the least error, and again, while it keeps more than `min_views` (Pose2Sim's rule, every
    point at once: each view left out in turn). `normalised`: each camera's `undistort` of
    its pixels when the caller has it already (any value where a view is not used). See the
    module docstring."""
    px = np.asarray(pixels, dtype=np.float64)
    n_cams = len(rig.cameras)
    if px.ndim != 4 or px.shape[0] != n_cams or px.shape[-1] != 2:
        raise UserError(f"pixels must be (cameras={n_cams}, frames, keypoints, 2), got {px.shape}")
    conf = np.ones(px.shape[:-1]) if confidence is None else np.asarray(confidence, np.float64)
    if conf.shape != px.shape[:-1]:
        raise UserError(f"confidence must be {px.shape[:-1]}, got {conf.shape}")
    if min_views < 2:
        raise UserError("a point needs at least 2 views to be triangulated")
    used = np.isfinite(px).all(-1) & np.isfinite(conf) & (conf >= min_confidence)  # (C, F, K)
    if normalised is None:
        # unused views as a harmless pixel (their weight is 0): undistorted once, every pass
        harmless = np.where(used[..., None], px, 0.0)
        normalised = [c.undistort(harmless[i]) for i, c in enumerate(rig.cameras)]
    normalised = [np.where(used[i][..., None], n, 0.0) for i, n in enumerate(normalised)]
    points = _solve(rig, normalised, np.where(used, conf, 0.0), used.sum(0) >= min_views)
    for _ in range(n_cams - min_views if max_error is not None else 0):
        error = reprojection_error(rig, points, px, used)
        redo = (error > max_error) & (used.sum(0) > min_views)  # (F, K)
        if not redo.any():
            break
        # each view left out in turn; the one whose removal reprojects best goes
        trials = []
        for c in range(n_cams):
            fewer = used.copy()
            fewer[c] = False
            weight = np.where(fewer, conf, 0.0)
            trial = _solve(rig, normalised, weight, fewer.sum(0) >= min_views)
            score = reprojection_error(rig, trial, px, fewer)
            trials.append((np.where(used[c], score, np.inf), trial))
        scores = np.nan_to_num(np.stack([t[0] for t in trials]), nan=np.inf)  # (C, F, K)
        best = scores.argmin(0)
        f, k = np.nonzero(redo)
        used[best[f, k], f, k] = False
        candidates = np.stack([t[1] for t in trials])  # (C, F, K, 3)
        points[f, k] = candidates[best[f, k], f, k]
    error = reprojection_error(rig, points, px, used)
    solved = np.isfinite(points).all(-1)
    return Triangulated(points, error, np.moveaxis(used, 0, -1) & solved[..., None])


def _solve(
    rig: CameraRig, normalised: list[np.ndarray], weight: np.ndarray, enough: np.ndarray
) -> np.ndarray:
    """(F, K, 3) points from the views' normalised coordinates and weights (0: unused), NaN
    where not `enough` views: the weighted DLT, all points at once."""
    # Hartley's conditioning: solve in a world frame centred on the cameras and scaled to
    # their spread (in millimetres the translation column would swamp the rotation's)
    to_world = _conditioning(rig)
    rows = []
    for c, camera in enumerate(rig.cameras):  # per camera (a handful), all points at once
        xy = normalised[c]  # (F, K, 2)
        p = camera.extrinsics @ to_world  # (3, 4), from conditioned coordinates
        w = weight[c][..., None]
        for coordinate, axis in ((xy[..., :1], p[0]), (xy[..., 1:], p[1])):
            row = coordinate * p[2] - axis  # (F, K, 4)
            # unit length first (every view counts alike at weight 1), then the weight
            rows.append(w * row / np.linalg.norm(row, axis=-1, keepdims=True))
    a = np.stack(rows, axis=-2)  # (F, K, 2C, 4)
    # the right singular vector of the smallest singular value is the eigenvector of the
    # smallest eigenvalue of a^T a
    homogeneous = smallest_eigenvector(np.swapaxes(a, -1, -2) @ a) @ to_world.T
    with np.errstate(divide="ignore", invalid="ignore"):
        points = homogeneous[..., :3] / homogeneous[..., 3:]
    points[~enough] = np.nan
    return points


def smallest_eigenvector(m: np.ndarray, *, tolerance: float = 1e-12) -> np.ndarray:
    """(..., 4) unit eigenvector of the smallest eigenvalue of each symmetric positive
    semi-definite (..., 4, 4) matrix, by elementwise arithmetic rather than one LAPACK call
    per matrix (a seventh of `numpy.linalg.eigh`'s time on a million): the least-squares
    point with w = 1 (a 3x3 solve by the adjugate), then two steps of inverse iteration
    (block elimination on the same 3x3 inverse). A matrix where that has not converged
    (its residual |M v - (v'Mv) v| above `tolerance` times its trace: near-degenerate views)
    is solved by `eigh`, so the answer is eigh's wherever the two could differ."""
    b, c, d = m[..., :3, :3], m[..., :3, 3], m[..., 3, 3]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inverse = _inverse3(b)
        inv_c = np.einsum("...ij,...j->...i", inverse, c)
        schur = d - np.einsum("...i,...i->...", c, inv_c)  # ~ the smallest eigenvalue
        v = np.concatenate([-inv_c, np.ones_like(d)[..., None]], -1)
        v /= np.linalg.norm(v, axis=-1, keepdims=True)
        for _ in range(2):  # inverse iteration, v <- M^-1 v, times schur (no division by ~0)
            top = np.einsum("...ij,...j->...i", inverse, v[..., :3])
            last = v[..., 3] - np.einsum("...i,...i->...", c, top)
            v = np.concatenate(
                [top * schur[..., None] - inv_c * last[..., None], last[..., None]], -1
            )
            v /= np.linalg.norm(v, axis=-1, keepdims=True)
        mv = np.einsum("...ij,...j->...i", m, v)
        quotient = np.einsum("...i,...i->...", v, mv)
        residual = np.linalg.norm(mv - quotient[..., None] * v, axis=-1)
        trace = np.trace(m, axis1=-2, axis2=-1)
        unsure = ~(residual <= tolerance * trace) & (trace > 0)
    if unsure.any():
        v[unsure] = np.linalg.eigh(m[unsure])[1][..., :, 0]
    return v


def _inverse3(b: np.ndarray) -> np.ndarray:
    """(..., 3, 3) inverses by the adjugate (inf or NaN where singular)."""
    a = b
    cof = np.empty_like(a)
    cof[..., 0, 0] = a[..., 1, 1] * a[..., 2, 2] - a[..., 1, 2] * a[..., 2, 1]
    cof[..., 0, 1] = a[..., 0, 2] * a[..., 2, 1] - a[..., 0, 1] * a[..., 2, 2]
    cof[..., 0, 2] = a[..., 0, 1] * a[..., 1, 2] - a[..., 0, 2] * a[..., 1, 1]
    cof[..., 1, 0] = a[..., 1, 2] * a[..., 2, 0] - a[..., 1, 0] * a[..., 2, 2]
    cof[..., 1, 1] = a[..., 0, 0] * a[..., 2, 2] - a[..., 0, 2] * a[..., 2, 0]
    cof[..., 1, 2] = a[..., 0, 2] * a[..., 1, 0] - a[..., 0, 0] * a[..., 1, 2]
    cof[..., 2, 0] = a[..., 1, 0] * a[..., 2, 1] - a[..., 1, 1] * a[..., 2, 0]
    cof[..., 2, 1] = a[..., 0, 1] * a[..., 2, 0] - a[..., 0, 0] * a[..., 2, 1]
    cof[..., 2, 2] = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    det = np.einsum("...i,...i->...", a[..., 0, :], cof[..., :, 0])
    return cof / det[..., None, None]


def _conditioning(rig: CameraRig) -> np.ndarray:
    """(4, 4) homogeneous map from conditioned to world coordinates: the camera centres'
    centroid at the origin, their mean distance from it 1."""
    centres = np.stack([-c.rotation_matrix.T @ c.translation for c in rig.cameras])
    centroid = centres.mean(0)
    scale = float(np.linalg.norm(centres - centroid, axis=1).mean()) or 1.0
    t = np.eye(4)
    t[:3, :3] *= scale
    t[:3, 3] = centroid
    return t


def view_errors(
    rig: CameraRig, points: np.ndarray, pixels: np.ndarray, used: np.ndarray
) -> np.ndarray:
    """(C, F, K) distance in pixels between each point's projection in each camera and the
    view of it (NaN where the view is not `used` or the point is missing)."""
    known = np.isfinite(points).all(-1)
    safe = np.where(known[..., None], points, 0.0)
    projected = np.stack([c.project(safe) for c in rig.cameras])  # (C, F, K, 2)
    out = np.linalg.norm(projected - pixels, axis=-1)
    return np.where(used & known, out, np.nan)


def reprojection_error(
    rig: CameraRig, points: np.ndarray, pixels: np.ndarray, used: np.ndarray
) -> np.ndarray:
    """(F, K) mean distance in pixels between each point's projection and the views `used`
    (C, F, K) of it (NaN for a missing point)."""
    errors = view_errors(rig, points, pixels, used)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: a missing point
        return np.nanmean(errors, axis=0)
