"""3D pose error metrics, as VideoPose3D and the Human3.6M literature report them.

- MPJPE: the mean Euclidean distance between predicted and true joints (after whatever
  alignment the caller did, e.g. both root-relative);
- P-MPJPE: the same after aligning each predicted pose to its truth by the best similarity
  transform (rotation, uniform scale, translation: Procrustes, reflections excluded);
- N-MPJPE: after the best uniform scale only (VideoPose3D's `n_mpjpe`);
- per-joint MPJPE, and the mean per-joint velocity error (MPJVE: the distance between the
  predicted and true frame-to-frame displacements).
Poses are (..., K, 3) arrays, the leading axes frames (and anything else); a joint that is
missing (NaN) in either is left out of every mean, and of its pose's alignment.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class Pose3DMetrics:
    """Errors in the poses' unit."""

    mpjpe: float
    p_mpjpe: float
    n_mpjpe: float
    mpjve: float
    per_joint: np.ndarray  # (K,) MPJPE of each joint
    poses: int  # poses with at least one joint compared

    def as_dict(self) -> dict[str, float]:
        return {
            "MPJPE": self.mpjpe,
            "P-MPJPE": self.p_mpjpe,
            "N-MPJPE": self.n_mpjpe,
            "MPJVE": self.mpjve,
        }


def _mean(values: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nothing to average: NaN
        return float(np.nanmean(values))


def _known(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    return np.isfinite(pred).all(-1) & np.isfinite(true).all(-1)


def procrustes_align(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """`pred` (..., K, 3) moved onto `true` pose by pose by the similarity transform
    (rotation without reflection, uniform scale, translation) that minimises the squared
    distance over the joints both have (Umeyama's closed form, batched)."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    known = _known(pred, true)[..., None]
    count = np.maximum(known.sum(-2, keepdims=True), 1)
    p = np.where(known, pred, 0.0)
    t = np.where(known, true, 0.0)
    mu_p, mu_t = p.sum(-2, keepdims=True) / count, t.sum(-2, keepdims=True) / count
    p0, t0 = np.where(known, p - mu_p, 0.0), np.where(known, t - mu_t, 0.0)
    cov = np.swapaxes(t0, -1, -2) @ p0  # (..., 3, 3) sum of t p^T
    u, s, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt))  # no reflection
    d = np.ones_like(s)
    d[..., -1] = sign
    rotation = u @ (d[..., None] * vt)
    variance = (p0**2).sum((-1, -2))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (s * d).sum(-1) / variance
    aligned = scale[..., None, None] * (p0 @ np.swapaxes(rotation, -1, -2)) + mu_t
    return np.where(known, aligned, np.nan)


def pose3d_metrics(pred: np.ndarray, true: np.ndarray) -> Pose3DMetrics:
    """Every metric of the module docstring for predicted and true poses (..., F, K, 3): the
    second-to-last axes are frames and joints (the velocity error runs along the frames)."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.shape[-1] != 3 or pred.ndim < 3:
        raise ValueError(
            f"poses must be (..., frames, joints, 3) alike, got {pred.shape} and {true.shape}"
        )
    known = _known(pred, true)
    error = np.where(known, np.linalg.norm(pred - true, axis=-1), np.nan)
    aligned = procrustes_align(pred, true)
    p_error = np.linalg.norm(aligned - true, axis=-1)
    p = np.where(known[..., None], pred, 0.0)
    t = np.where(known[..., None], true, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (p * t).sum((-1, -2)) / (p * p).sum((-1, -2))
    n_error = np.where(known, np.linalg.norm(scale[..., None, None] * pred - true, axis=-1), np.nan)
    steps = np.diff(pred, axis=-3) - np.diff(true, axis=-3)
    velocity = np.linalg.norm(steps, axis=-1)  # NaN where a joint is missing in either frame
    per_joint = error.reshape(-1, error.shape[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        joints = np.nanmean(per_joint, axis=0)
    return Pose3DMetrics(
        mpjpe=_mean(error),
        p_mpjpe=_mean(p_error),
        n_mpjpe=_mean(n_error),
        mpjve=_mean(velocity),
        per_joint=joints,
        poses=int(known.any(-1).sum()),
    )


@dataclass
class LiftMetrics:
    """The errors of a lifting network on a sequence split, in millimetres."""

    metrics: Pose3DMetrics  # in millimetres, root-relative
    joints: list[str]
    clips: int
    frames: int

    def as_dict(self) -> dict[str, float]:
        """The trainer's and `posekit val`'s figures: `MPJPE_mm` and the others."""
        return {f"{k}_mm": float(v) for k, v in self.metrics.as_dict().items()}

    def per_joint(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.joints, self.metrics.per_joint, strict=True)}

    def summary(self) -> str:
        m = self.metrics
        return (
            f"{self.clips} clips, {self.frames} frames: MPJPE {m.mpjpe:.1f} mm, P-MPJPE "
            f"{m.p_mpjpe:.1f} mm, N-MPJPE {m.n_mpjpe:.1f} mm, velocity error "
            f"{m.mpjve:.2f} mm/frame"
        )
