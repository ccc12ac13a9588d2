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
    shape = weight.shape[1:]
    # the 4x4 normal matrix A^T A of every point, entry by entry (each entry one contiguous
    # array over the points: a tenth of the memory traffic of stacking the rows)
    m = np.zeros((4, 4, *shape))
    for c, camera in enumerate(rig.cameras):  # per camera (a handful), all points at once
        xy = normalised[c]  # (F, K, 2)
        p = camera.extrinsics @ to_world  # (3, 4), from conditioned coordinates
        for coordinate, axis in ((xy[..., 0], p[0]), (xy[..., 1], p[1])):
            row = [coordinate * p[2, j] - axis[j] for j in range(4)]
            # unit length first (every view counts alike at weight 1), then the weight
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = weight[c] ** 2 / sum(r * r for r in row)
            scale = np.where(weight[c] > 0, scale, 0.0)
            for i in range(4):
                scaled = scale * row[i]
                for j in range(i, 4):
                    m[i, j] += scaled * row[j]
    for i in range(4):
        for j in range(i):
            m[i, j] = m[j, i]
    # the right singular vector of the smallest singular value of A is the eigenvector of
    # the smallest eigenvalue of A^T A
    homogeneous = smallest_eigenvector(np.moveaxis(m, (0, 1), (-2, -1))) @ to_world.T
    with np.errstate(divide="ignore", invalid="ignore"):
        points = homogeneous[..., :3] / homogeneous[..., 3:]
    points[~enough] = np.nan
    return points


def smallest_eigenvector(m: np.ndarray, *, tolerance: float = 1e-12) -> np.ndarray:
    """(..., 4) unit eigenvector of the smallest eigenvalue of each symmetric positive
    semi-definite (..., 4, 4) matrix, by elementwise arithmetic rather than one LAPACK call
    per matrix (a fifth of `numpy.linalg.eigh`'s time on a million): the least-squares
    point with w = 1 (a 3x3 solve by the adjugate), then two steps of inverse iteration
    (block elimination on the same 3x3 inverse). A matrix where that has not converged
    (its residual |M v - (v'Mv) v| above `tolerance` times its trace: near-degenerate views)
    is solved by `eigh`, so the answer is eigh's wherever the two could differ."""
    e = np.moveaxis(m, (-2, -1), (0, 1))  # entry-first: each entry over all matrices
    b00, b01, b02, b11, b12, b22 = e[0, 0], e[0, 1], e[0, 2], e[1, 1], e[1, 2], e[2, 2]
    c = (e[0, 3], e[1, 3], e[2, 3])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # the adjugate of the symmetric 3x3 block, and its determinant
        a00, a01, a02 = b11 * b22 - b12 * b12, b02 * b12 - b01 * b22, b01 * b12 - b02 * b11
        a11, a12, a22 = b00 * b22 - b02 * b02, b01 * b02 - b00 * b12, b00 * b11 - b01 * b01
        det = b00 * a00 + b01 * a01 + b02 * a02

        def solve3(v0: np.ndarray, v1: np.ndarray, v2: np.ndarray) -> list[np.ndarray]:
            return [
                (a00 * v0 + a01 * v1 + a02 * v2) / det,
                (a01 * v0 + a11 * v1 + a12 * v2) / det,
                (a02 * v0 + a12 * v1 + a22 * v2) / det,
            ]

        inv_c = solve3(*c)
        schur = e[3, 3] - sum(ci * ii for ci, ii in zip(c, inv_c, strict=True))  # ~ eigenvalue
        v = [-inv_c[0], -inv_c[1], -inv_c[2], np.ones_like(schur)]
        for step in range(3):
            norm = np.sqrt(sum(x * x for x in v))
            v = [x / norm for x in v]
            if step == 2:
                break
            # inverse iteration, v <- M^-1 v, times schur (no division by ~0)
            top = solve3(*v[:3])
            last = v[3] - sum(ci * ti for ci, ti in zip(c, top, strict=True))
            v = [t * schur - i * last for t, i in zip(top, inv_c, strict=True)] + [last]
        mv = [sum(e[k, j] * v[j] for j in range(4)) for k in range(4)]
        quotient = sum(vk * mk for vk, mk in zip(v, mv, strict=True))
        residual = np.sqrt(sum((mk - quotient * vk) ** 2 for vk, mk in zip(v, mv, strict=True)))
        trace = e[0, 0] + e[1, 1] + e[2, 2] + e[3, 3]
        unsure = ~(residual <= tolerance * trace) & (trace > 0)
    out = np.stack(v, axis=-1)
    if unsure.any():
        out[unsure] = np.linalg.eigh(m[unsure])[1][..., :, 0]
    return out


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
