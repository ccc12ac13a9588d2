"""Refinement of triangulated points over time, as Anipose's optimisation: one sparse
least-squares problem over every point of a clip at once.

Three kinds of residual, each divided by the spread it is allowed:
- reprojection: the distance in pixels between each used view and the point's projection
  (`pixel_sigma`), through the camera's full model (OpenCV's projection, distortion included);
- bone length: each skeleton edge's length in each frame against one length per edge, a
  free parameter solved with the points (`bone_sigma`, a fraction of that length);
- smoothness: a point's step between consecutive frames (`step_sigma`, a fraction of the
  skeleton's median edge length), so the settings hold in any unit.
A robust loss (soft L1, scale 1) keeps a wrong view or a fast move from dragging the rest.
Only points the triangulation solved are moved; a missing point stays missing. The Jacobian's
sparsity is given, so SciPy's finite differences cost a few dozen evaluations per step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares

from posekit.threed.cameras import CameraRig


@dataclass
class Refined:
    """The refined points, the edge lengths found, and what the solver did."""

    points: np.ndarray  # (F, K, 3), NaN where the input was
    lengths: np.ndarray  # (E,) one length per skeleton edge (NaN: never both ends seen)
    evaluations: int


def refine(
    rig: CameraRig,
    points: np.ndarray,
    pixels: np.ndarray,
    used: np.ndarray,
    edges: tuple[tuple[int, int], ...],
    *,
    pixel_sigma: float = 5.0,
    bone_sigma: float = 0.02,
    step_sigma: float = 0.1,
    max_evaluations: int = 100,
) -> Refined:
    """Refine `points` (F, K, 3) seen as `pixels` (C, F, K, 2) by the views `used` (C, F, K)
    of the rig's cameras, with the skeleton `edges` (see the module docstring)."""
    known = np.isfinite(points).all(-1)
    n = int(known.sum())
    slot = np.full(known.shape, -1)
    slot[known] = np.arange(n)
    edge_array = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    a, b = edge_array.T
    with np.errstate(invalid="ignore"):
        lengths = np.linalg.norm(points[:, a] - points[:, b], axis=-1)  # (F, E)
    both = np.isfinite(lengths)
    solved_edges = both.any(0)
    if n == 0:
        return Refined(points.copy(), np.full(len(edge_array), np.nan), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an edge never seen whole: NaN
        initial = np.nanmedian(lengths, axis=0)
    if solved_edges.any():
        scale = float(np.nanmedian(initial))
    else:  # no skeleton: the points' spread about their frame's centre sets the scale
        centre = np.nanmean(np.where(known[..., None], points, np.nan), axis=1, keepdims=True)
        scale = float(np.nanmedian(np.linalg.norm(points - centre, axis=-1))) or 1.0
    problem = _Problem(rig, known, slot, pixels, used & known[None], edge_array, both)
    weights = (pixel_sigma, bone_sigma, step_sigma * scale)
    x0 = np.concatenate([points[known].ravel(), np.nan_to_num(initial, nan=1.0)])
    out = least_squares(
        problem.residuals,
        x0,
        args=(weights,),
        jac_sparsity=problem.sparsity(),
        loss="soft_l1",
        x_scale="jac",
        method="trf",
        tr_solver="lsmr",
        max_nfev=max_evaluations,
    )
    refined = np.full(points.shape, np.nan)
    refined[known] = out.x[: 3 * n].reshape(n, 3)
    found = np.where(solved_edges, out.x[3 * n :], np.nan)
    return Refined(refined, found, int(out.nfev))


class _Problem:
    """The residuals of `refine` and where they depend on the unknowns."""

    def __init__(
        self,
        rig: CameraRig,
        known: np.ndarray,
        slot: np.ndarray,
        pixels: np.ndarray,
        used: np.ndarray,
        edges: np.ndarray,
        both: np.ndarray,
    ) -> None:
        self.rig, self.known, self.n = rig, known, int(known.sum())
        self.cam, self.frame, self.kpt = np.nonzero(used)  # the observations
        self.target = pixels[self.cam, self.frame, self.kpt]
        self.edge_frame, self.edge = np.nonzero(both)  # edges with both ends solved
        self.edges = edges
        self.step_frame, self.step_kpt = np.nonzero(known[1:] & known[:-1])
        self.obs_slot = slot[self.frame, self.kpt]
        self.a_slot = slot[self.edge_frame, edges[self.edge, 0]]
        self.b_slot = slot[self.edge_frame, edges[self.edge, 1]]
        self.s0 = slot[self.step_frame, self.step_kpt]
        self.s1 = slot[self.step_frame + 1, self.step_kpt]

    def residuals(self, x: np.ndarray, weights: tuple[float, float, float]) -> np.ndarray:
        pixel_sigma, bone_sigma, step = weights
        xyz = x[: 3 * self.n].reshape(self.n, 3)
        lengths = x[3 * self.n :]
        projected = np.empty((len(self.cam), 2))
        for c, camera in enumerate(self.rig.cameras):
            mine = self.cam == c
            projected[mine] = camera.project(xyz[self.obs_slot[mine]])
        reprojection = ((projected - self.target) / pixel_sigma).ravel()
        span = np.linalg.norm(xyz[self.a_slot] - xyz[self.b_slot], axis=-1)
        target = lengths[self.edge]
        bones = (span - target) / (bone_sigma * np.abs(target) + 1e-12)
        steps = ((xyz[self.s1] - xyz[self.s0]) / step).ravel()
        return np.concatenate([reprojection, bones, steps])

    def sparsity(self) -> sp.csr_matrix:
        rows, cols = [], []
        n_obs, n_bones, n_steps = len(self.cam), len(self.edge), len(self.s0)
        for axis in range(2):  # each pixel coordinate depends on the point's x, y, z
            for d in range(3):
                rows.append(2 * np.arange(n_obs) + axis)
                cols.append(3 * self.obs_slot + d)
        start = 2 * n_obs
        for d in range(3):
            rows += [start + np.arange(n_bones)] * 2
            cols += [3 * self.a_slot + d, 3 * self.b_slot + d]
        rows.append(start + np.arange(n_bones))
        cols.append(3 * self.n + self.edge)
        start += n_bones
        for d in range(3):
            rows += [start + 3 * np.arange(n_steps) + d] * 2
            cols += [3 * self.s0 + d, 3 * self.s1 + d]
        shape = (start + 3 * n_steps, 3 * self.n + len(self.edges))
        r, c = np.concatenate(rows), np.concatenate(cols)
        return sp.coo_matrix((np.ones(len(r)), (r, c)), shape=shape).tocsr()
