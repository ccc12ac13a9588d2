"""Drawing primitives for synthetic figures: shapes rendered into a label map, then coloured.

A figure is a list of `Shape`s, each tagged with a part label (skin, shirt, ...). Shapes are
drawn into a small uint8 label canvas covering the figure, coloured through a palette with an
optional texture per label, and pasted onto the image, which also records in an `owner` map
which figure is on top at every pixel (that is how occlusion flags are decided).

Coordinates are continuous (pixel centres at +0.5); OpenCV draws in pixel-index coordinates,
so points are shifted by -0.5 and given to OpenCV with 4 fractional bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SHIFT = 4
_SCALE = 1 << SHIFT


@dataclass(frozen=True)
class Shape:
    """A filled shape of one part label: a polygon (N, 2) or an ellipse (centre, axes, angle)."""

    label: int
    polygon: np.ndarray | None = None
    ellipse: tuple[tuple[float, float], tuple[float, float], float] | None = None

    def bounds(self) -> tuple[float, float, float, float]:
        if self.polygon is not None:
            lo, hi = self.polygon.min(axis=0), self.polygon.max(axis=0)
            return lo[0], lo[1], hi[0], hi[1]
        (cx, cy), (ax, ay), _ = self.ellipse  # type: ignore[misc]
        r = max(ax, ay)
        return cx - r, cy - r, cx + r, cy + r


def segment(label: int, p0: np.ndarray, p1: np.ndarray, w0: float, w1: float) -> list[Shape]:
    """A limb from p0 to p1, `w0` wide at p0 and `w1` at p1, with round ends."""
    d = p1 - p0
    n = float(np.hypot(*d)) or 1e-6
    normal = np.array([-d[1], d[0]]) / n
    quad = np.stack(
        [p0 + normal * w0 / 2, p1 + normal * w1 / 2, p1 - normal * w1 / 2, p0 - normal * w0 / 2]
    )
    return [
        Shape(label, polygon=quad),
        Shape(label, ellipse=((p0[0], p0[1]), (w0 / 2, w0 / 2), 0.0)),
        Shape(label, ellipse=((p1[0], p1[1]), (w1 / 2, w1 / 2), 0.0)),
    ]


def _fixed(points: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return np.round((points - offset - 0.5) * _SCALE).astype(np.int32)


def draw_labels(shapes: list[Shape], width: int, height: int) -> tuple[np.ndarray, int, int] | None:
    """Rasterise shapes (in order, later on top) into a label crop clipped to the image.

    Returns (labels, x0, y0): the crop and its top-left corner in the image, or None when the
    figure lies entirely outside the image.
    """
    b = np.array([s.bounds() for s in shapes])
    x0, y0 = max(int(np.floor(b[:, 0].min())) - 1, 0), max(int(np.floor(b[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(b[:, 2].max())) + 2, width)
    y1 = min(int(np.ceil(b[:, 3].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    labels = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    off = np.array([x0, y0], dtype=np.float64)
    for s in shapes:
        if s.polygon is not None:
            cv2.fillConvexPoly(labels, _fixed(s.polygon, off), s.label, cv2.LINE_8, SHIFT)
        else:
            (cx, cy), (ax, ay), ang = s.ellipse  # type: ignore[misc]
            c = _fixed(np.array([cx, cy]), off)
            axes = (max(round(ax * _SCALE), 1), max(round(ay * _SCALE), 1))
            cv2.ellipse(
                labels,
                (int(c[0]), int(c[1])),
                axes,
                ang,
                0,
                360,
                int(s.label),
                -1,
                cv2.LINE_8,
                SHIFT,
            )
    return labels, x0, y0


def paste(
    image: np.ndarray,
    owner: np.ndarray,
    owner_id: int,
    labels: np.ndarray,
    x0: int,
    y0: int,
    palette: np.ndarray,
    textures: dict[int, np.ndarray],
) -> int:
    """Colour a label crop and paste it; returns the number of pixels painted.

    `palette` is (L, 3) uint8 BGR per label; `textures[label]` is a float32 gain image at least
    as large as the crop, multiplied into that label's colour.
    """
    h, w = labels.shape
    mask = labels > 0
    count = int(np.count_nonzero(mask))
    if count == 0:
        return 0
    colored = palette[labels].astype(np.float32)  # (h, w, 3)
    for label, tex in textures.items():
        sel = labels == label
        if sel.any():
            colored[sel] *= tex[:h, :w][sel][:, None]
    region = image[y0 : y0 + h, x0 : x0 + w]
    region[mask] = np.clip(colored[mask], 0, 255).astype(np.uint8)
    owner[y0 : y0 + h, x0 : x0 + w][mask] = owner_id
    return count


def texture(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """A float32 (h, w) gain pattern around 1: stripes, checks, blotches or plain."""
    kind = rng.integers(0, 4)
    if kind == 0:
        return np.ones((h, w), dtype=np.float32)
    period = max(3.0, scale * rng.uniform(0.04, 0.15))
    amp = rng.uniform(0.15, 0.4)
    if kind == 1:  # stripes at a random angle
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        phase = (xx * np.cos(ang) + yy * np.sin(ang)) * (2 * np.pi / period)
        return (1 + amp * np.sign(np.sin(phase))).astype(np.float32)
    if kind == 2:  # checks
        yy, xx = np.mgrid[0:h, 0:w]
        check = ((xx // period).astype(int) + (yy // period).astype(int)) % 2
        return (1 - amp + 2 * amp * check).astype(np.float32)
    small = rng.random((max(2, int(h / period)), max(2, int(w / period))), dtype=np.float32)
    blob = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return (1 + amp * (2 * blob - 1)).astype(np.float32)
