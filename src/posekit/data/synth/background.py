"""Cluttered, textured backgrounds and camera effects (blur, noise, exposure) for synthetic data.

Expensive pieces (large noise fields) are made once per `Backdrop` from its seed and then
cropped at random offsets, which keeps generation above 100 images/s on one core.
"""

from __future__ import annotations

import cv2
import numpy as np


class Backdrop:
    """Makes backgrounds and applies camera effects; deterministic given the rng passed in."""

    def __init__(self, width: int, height: int, seed: int) -> None:
        self.width, self.height = width, height
        rng = np.random.default_rng([seed, 0xBACC])
        # Two noise fields twice the image size, cropped at random offsets per image.
        self.noise = [
            rng.normal(0, 1, (2 * height, 2 * width, 3)).astype(np.float32) for _ in range(2)
        ]

    def background(self, rng: np.random.Generator) -> np.ndarray:
        """A colour field with low-frequency variation and 10-50 clutter shapes."""
        h, w = self.height, self.width
        small = rng.uniform(0, 255, (rng.integers(2, 7), rng.integers(2, 9), 3))
        gray = rng.uniform(60, 200)
        small = gray + (small - gray) * rng.uniform(0.2, 0.8)  # muted colours, like real scenes
        img = cv2.resize(small.astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
        if rng.random() < 0.5:  # floor / wall split
            y = int(rng.uniform(0.2, 0.8) * h)
            img[y:] = (img[y:] * rng.uniform(0.5, 0.9)).astype(np.uint8)
        for _ in range(int(rng.integers(10, 50))):
            self._clutter(img, rng)
        return img

    def _clutter(self, img: np.ndarray, rng: np.random.Generator) -> None:
        h, w = img.shape[:2]
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        size = max(4.0, float(np.exp(rng.uniform(np.log(6), np.log(0.4 * max(h, w))))))
        cx, cy = rng.uniform(-0.1 * w, 1.1 * w), rng.uniform(-0.1 * h, 1.1 * h)
        kind = rng.integers(0, 5)
        if kind == 0:
            cv2.rectangle(
                img,
                (int(cx), int(cy)),
                (int(cx + size * rng.uniform(0.3, 2)), int(cy + size)),
                color,
                -1,
            )
        elif kind == 1:
            cv2.circle(img, (int(cx), int(cy)), int(size / 2), color, -1, cv2.LINE_AA)
        elif kind == 2:  # sticks: limb-like distractors
            ang = rng.uniform(0, np.pi)
            dx, dy = np.cos(ang) * size, np.sin(ang) * size
            thick = int(max(1, size * rng.uniform(0.03, 0.2)))
            cv2.line(
                img, (int(cx), int(cy)), (int(cx + dx), int(cy + dy)), color, thick, cv2.LINE_AA
            )
        elif kind == 3:
            pts = rng.uniform(-size / 2, size / 2, (rng.integers(3, 7), 2)) + [cx, cy]
            cv2.fillPoly(img, [pts.astype(np.int32)], color, cv2.LINE_AA)
        else:
            cv2.ellipse(
                img,
                (int(cx), int(cy)),
                (int(size / 2), int(size / 4) + 1),
                float(rng.uniform(0, 180)),
                0,
                360,
                color,
                -1,
                cv2.LINE_AA,
            )

    def camera(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Exposure change, optional blur and sensor noise."""
        gain, bias = rng.uniform(0.7, 1.25), rng.uniform(-25, 25)
        out = cv2.convertScaleAbs(img, alpha=gain, beta=bias)
        if rng.random() < 0.35:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.6))
        if rng.random() < 0.6:
            field = self.noise[int(rng.integers(0, len(self.noise)))]
            oy, ox = rng.integers(0, self.height), rng.integers(0, self.width)
            sigma = rng.uniform(2, 10)
            noise = field[oy : oy + self.height, ox : ox + self.width]
            out = cv2.addWeighted(out.astype(np.float32), 1.0, noise, sigma, 0.0)
            out = np.clip(out, 0, 255).astype(np.uint8)
        return out
