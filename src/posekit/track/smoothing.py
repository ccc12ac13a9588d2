"""One Euro filter (Casiez, Roussel and Vogel, CHI 2012) over arrays of keypoint coordinates.

A low-pass filter whose cut-off rises with speed: still points are smoothed hard (no jitter)
and fast ones lightly (little lag). Time comes from the frames' timestamps, so dropped or
irregular frames are handled. Entries that are missing in a frame (not `valid`) keep their
state and come out unchanged; one missing for longer than `reset_after` seconds starts afresh
when it reappears, instead of being dragged from where it was last seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posekit.utils.bounds import check_ranges, ranged


@dataclass(frozen=True)
class OneEuroConfig:
    """Filter settings. `min_cutoff` (Hz): smoothing of still points, lower = smoother;
    `beta`: how fast the cut-off grows with speed (per px/s), higher = less lag;
    `d_cutoff` (Hz): smoothing of the speed estimate."""

    min_cutoff: float = ranged(1.0, 1e-6, 1000)  # One Euro: lower is smoother when still (Hz)
    beta: float = ranged(0.05, 0, 1000)  # One Euro: higher is less lag when moving
    d_cutoff: float = ranged(1.0, 1e-6, 1000)  # One Euro: smoothing of the speed estimate (Hz)
    reset_after: float = ranged(0.5, 0, 3600)  # seconds missing after which a point restarts

    def __post_init__(self) -> None:
        check_ranges(self, "smoothing")


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray) -> np.ndarray:
    tau = 1.0 / (2 * np.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over a fixed-shape array (e.g. (K, 2) keypoints of one track).

    Example:
        >>> f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.1))
        >>> smoothed = f(np.array([[10.0, 20.0]]), t=0.0)
    """

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = config or OneEuroConfig()
        self.x: np.ndarray | None = None  # last filtered value
        self.dx: np.ndarray | None = None  # last filtered derivative
        self.t: np.ndarray | None = None  # time each entry was last updated

    def __call__(self, x: np.ndarray, t: float, valid: np.ndarray | None = None) -> np.ndarray:
        """Filtered `x` at time `t` (seconds). `valid` (same shape, bool): entries present in
        this frame; missing ones are returned as given and do not touch the state."""
        c = self.config
        x = np.asarray(x, dtype=np.float64)
        valid = np.isfinite(x) if valid is None else (np.asarray(valid, bool) & np.isfinite(x))
        if self.x is None:
            self.x = np.where(valid, x, np.nan)
            self.dx = np.zeros_like(x)
            self.t = np.where(valid, t, np.nan)
            return x.copy()
        assert self.dx is not None and self.t is not None
        dt = t - self.t
        # entries seen before, not too long ago, and present now are filtered
        fresh = valid & np.isfinite(self.x) & (dt > 0) & (dt <= c.reset_after)
        restart = valid & ~fresh  # first sighting, or back after a long gap
        dt_safe = np.where(fresh, dt, 1.0)
        dx = np.where(fresh, (x - np.nan_to_num(self.x)) / dt_safe, 0.0)
        a_d = _alpha(c.d_cutoff, dt_safe)
        edx = a_d * dx + (1 - a_d) * self.dx
        cutoff = c.min_cutoff + c.beta * np.abs(edx)
        a = _alpha(cutoff, dt_safe)
        filtered = a * x + (1 - a) * np.nan_to_num(self.x)
        out = np.where(fresh, filtered, x)
        self.x = np.where(fresh | restart, out, self.x)
        self.dx = np.where(fresh, edx, np.where(restart, 0.0, self.dx))
        self.t = np.where(fresh | restart, t, self.t)
        return out


class TrackSmoother:
    """A One Euro filter per track over its (K, 2) keypoint coordinates; keypoints below
    `kpt_conf` count as missing in that frame. Filters of tracks gone for `reset_after` seconds
    are dropped."""

    def __init__(self, config: OneEuroConfig | None = None, kpt_conf: float = 0.5) -> None:
        self.config = config or OneEuroConfig()
        self.kpt_conf = kpt_conf
        self.filters: dict[int, OneEuroFilter] = {}
        self.last_seen: dict[int, float] = {}

    def __call__(self, track_ids: np.ndarray, keypoints: np.ndarray, t: float) -> np.ndarray:
        """Smoothed copy of `keypoints` (N, K, 3) for tracks `track_ids` (N,) at time `t`."""
        out = np.array(keypoints, dtype=np.float64, copy=True)
        for i, tid in enumerate(np.asarray(track_ids).tolist()):
            if tid < 0:
                continue
            f = self.filters.setdefault(tid, OneEuroFilter(self.config))
            ok = np.repeat((out[i, :, 2] >= self.kpt_conf)[:, None], 2, axis=1)
            out[i, :, :2] = f(out[i, :, :2], t, ok)
            self.last_seen[tid] = t
        stale = [k for k, s in self.last_seen.items() if t - s > self.config.reset_after]
        for k in stale:
            del self.filters[k], self.last_seen[k]
        return out
