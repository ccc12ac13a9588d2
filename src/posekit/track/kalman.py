"""A constant-velocity Kalman filter on boxes (centre x, centre y, aspect w/h, height), as in
SORT and ByteTrack, vectorised over tracks. Noise scales with the box height, so the filter
behaves the same for near and far objects."""

from __future__ import annotations

import numpy as np

STD_POSITION = 1.0 / 20
STD_VELOCITY = 1.0 / 160


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], np.maximum(b[:, 3] - b[:, 1], 1e-6)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, w / h, h], 1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    x = np.asarray(xyah, dtype=np.float64).reshape(-1, 4)
    w, h = x[:, 2] * x[:, 3], x[:, 3]
    return np.stack([x[:, 0] - w / 2, x[:, 1] - h / 2, x[:, 0] + w / 2, x[:, 1] + h / 2], 1)


class KalmanBoxFilter:
    """8-d state (x, y, a, h, vx, vy, va, vh) per track; `dt` in frames."""

    def __init__(self) -> None:
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)
        self.H = np.eye(4, 8)

    def initiate(self, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means (N, 8) and covariances (N, 8, 8) for new tracks."""
        n = len(xyah)
        mean = np.concatenate([xyah, np.zeros((n, 4))], 1)
        h = xyah[:, 3]
        std = np.stack(
            [
                2 * STD_POSITION * h,
                2 * STD_POSITION * h,
                np.full(n, 1e-2),
                2 * STD_POSITION * h,
                10 * STD_VELOCITY * h,
                10 * STD_VELOCITY * h,
                np.full(n, 1e-5),
                10 * STD_VELOCITY * h,
            ],
            1,
        )
        return mean, np.einsum("ni,ij->nij", std**2, np.eye(8))

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(mean) == 0:
            return mean, cov
        h = mean[:, 3]
        n = len(mean)
        std = np.stack(
            [
                STD_POSITION * h,
                STD_POSITION * h,
                np.full(n, 1e-2),
                STD_POSITION * h,
                STD_VELOCITY * h,
                STD_VELOCITY * h,
                np.full(n, 1e-5),
                STD_VELOCITY * h,
            ],
            1,
        )
        q = np.einsum("ni,ij->nij", std**2, np.eye(8))
        mean = mean @ self.F.T
        cov = self.F @ cov @ self.F.T + q
        return mean, cov

    def update(
        self, mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correct (N, 8) states with (N, 4) measurements."""
        if len(mean) == 0:
            return mean, cov
        h = mean[:, 3]
        n = len(mean)
        std = np.stack([STD_POSITION * h, STD_POSITION * h, np.full(n, 1e-1), STD_POSITION * h], 1)
        r = np.einsum("ni,ij->nij", std**2, np.eye(4))
        s = self.H @ cov @ self.H.T + r  # (N, 4, 4)
        pht = cov @ self.H.T  # (N, 8, 4)
        gain = np.linalg.solve(s, pht.transpose(0, 2, 1)).transpose(0, 2, 1)  # (N, 8, 4)
        innovation = xyah - mean[:, :4]
        mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        cov = cov - gain @ s @ gain.transpose(0, 2, 1)
        return mean, cov
