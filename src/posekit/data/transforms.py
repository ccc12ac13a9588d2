"""Geometric and photometric transforms for images with keypoints, as pure functions.

Every geometric step is a 3x3 matrix in continuous coordinates (pixel centres at +0.5), so
letterbox, random scale/rotation/translation and flip compose into one matrix, the image is
resampled once, and keypoints and boxes move through exactly the same mapping. OpenCV warps in
pixel-index coordinates; `to_index_matrix` converts.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from posekit.ops.instances import Instances

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Resize keeping the aspect ratio, then pad to `size` x `size` (or, with `stride`, to the
    smallest multiple of `stride` around the resized image: less padding, same scale).

    `scale_x` / `scale_y` are the exact factors of the resize (new size / old size, which can
    differ by a hair from each other after rounding) so the inverse mapping is exact.
    """

    size: int
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    new_w: int
    new_h: int
    canvas_w: int = 0  # output width (0: `size`)
    canvas_h: int = 0

    @classmethod
    def fit(cls, width: int, height: int, size: int, stride: int | None = None) -> Letterbox:
        r = size / max(width, height)
        nw, nh = max(1, round(width * r)), max(1, round(height * r))
        cw, ch = size, size
        if stride:
            cw, ch = -(-nw // stride) * stride, -(-nh // stride) * stride
        px, py = (cw - nw) // 2, (ch - nh) // 2
        return cls(size, nw / width, nh / height, px, py, nw, nh, cw, ch)

    @property
    def shape(self) -> tuple[int, int]:
        """Output (height, width)."""
        return (self.canvas_h or self.size, self.canvas_w or self.size)

    def matrix(self) -> np.ndarray:
        return np.array([[self.scale_x, 0, self.pad_x], [0, self.scale_y, self.pad_y], [0, 0, 1]])

    def apply(self, image: np.ndarray, shrink: str = "area") -> np.ndarray:
        """`image` resized and padded; shrinking uses OpenCV's area filter (`shrink="area"`,
        the least aliasing) or bilinear interpolation (`"linear"`, as some published models'
        own pipelines do); enlarging is always bilinear."""
        interp = cv2.INTER_AREA if self.scale_x < 1 and shrink == "area" else cv2.INTER_LINEAR
        if (self.new_w, self.new_h) == (image.shape[1], image.shape[0]):
            resized = image
        else:
            resized = cv2.resize(image, (self.new_w, self.new_h), interpolation=interp)
        h, w = self.shape
        if (h, w) == (self.new_h, self.new_w):
            return np.ascontiguousarray(resized)
        out = np.full((h, w, 3), PAD_VALUE, dtype=np.uint8)
        out[self.pad_y : self.pad_y + self.new_h, self.pad_x : self.pad_x + self.new_w] = resized
        return out

    def to_original(self, xy: np.ndarray) -> np.ndarray:
        """Map (..., 2) points from the letterboxed image back to the original image."""
        out = np.array(xy, dtype=np.float64, copy=True)
        out[..., 0] = (out[..., 0] - self.pad_x) / self.scale_x
        out[..., 1] = (out[..., 1] - self.pad_y) / self.scale_y
        return out

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        out = np.array(xy, dtype=np.float64, copy=True)
        out[..., 0] = out[..., 0] * self.scale_x + self.pad_x
        out[..., 1] = out[..., 1] * self.scale_y + self.pad_y
        return out


def translation(dx: float, dy: float) -> np.ndarray:
    """The 3x3 matrix that moves points by (dx, dy)."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def to_index_matrix(m: np.ndarray) -> np.ndarray:
    """The same mapping in the pixel-index coordinates cv2.warpAffine uses: T(-0.5) M T(0.5)."""
    return translation(-0.5, -0.5) @ m @ translation(0.5, 0.5)


Size = int | tuple[int, int]  # a square side, or (width, height)


def wh(size: Size) -> tuple[int, int]:
    """(width, height) of a square side or a (width, height) pair."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def warp(image: np.ndarray, m: np.ndarray, size: Size) -> np.ndarray:
    """Resample `image` through the continuous-coordinate matrix `m` into a `size` canvas."""
    idx = to_index_matrix(m)[:2]
    return cv2.warpAffine(image, idx, wh(size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3)  # fmt: skip


def transform_points(xy: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(..., 2) points through the 3x3 matrix `m`."""
    return xy @ m[:2, :2].T + m[:2, 2]


def random_affine(
    rng: np.random.Generator, size: Size, *, scale: float, degrees: float, translate: float
) -> np.ndarray:
    """A random scale / rotation about the canvas centre, then a translation (3x3)."""
    w, h = wh(size)
    cx, cy = w / 2, h / 2
    s = rng.uniform(1 - scale, 1 + scale)
    a = np.deg2rad(rng.uniform(-degrees, degrees))
    rot = np.array([[s * np.cos(a), -s * np.sin(a), 0], [s * np.sin(a), s * np.cos(a), 0],
                    [0, 0, 1]])  # fmt: skip
    back = translation(cx + rng.uniform(-translate, translate) * w,
                       cy + rng.uniform(-translate, translate) * h)  # fmt: skip
    return back @ rot @ translation(-cx, -cy)


def hflip_matrix(size: Size) -> np.ndarray:
    """x -> width - x (continuous coordinates: the mirror of pixel i is pixel width - 1 - i)."""
    return np.array([[-1.0, 0, wh(size)[0]], [0, 1, 0], [0, 0, 1]])


def transform_instances(
    inst: Instances, m: np.ndarray, size: Size, *, flip_tables: np.ndarray | None = None,
    min_size: float = 2.0,
) -> Instances:  # fmt: skip
    """Move instances through `m`; with `flip_tables` ((nc, K) per-class flip permutations)
    the keypoints also swap sides. Boxes become the bounds of their moved corners, clipped;
    instances left smaller than `min_size` px are out of frame and removed; keypoints outside
    the frame become unlabelled (v = 0)."""
    if len(inst) == 0:
        return inst
    x1, y1, x2, y2 = inst.boxes.T
    corners = np.stack([np.c_[x1, y1], np.c_[x2, y1], np.c_[x2, y2], np.c_[x1, y2]], 1)
    moved = transform_points(corners, m)  # (N, 4, 2)
    w, h = wh(size)
    boxes = np.concatenate([moved.min(1), moved.max(1)], 1).clip(0, [w, h, w, h])
    kp = inst.keypoints.copy()
    kp[..., :2] = transform_points(kp[..., :2], m)
    if flip_tables is not None:
        kp = np.take_along_axis(kp, flip_tables[inst.classes][:, :, None], axis=1)
    outside = (kp[..., 0] < 0) | (kp[..., 0] >= w) | (kp[..., 1] < 0) | (kp[..., 1] >= h)
    kp[outside | (kp[..., 2] <= 0)] = 0.0
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    return Instances(boxes=boxes, keypoints=kp, classes=inst.classes.copy()).select(keep)


def hsv_jitter(
    image: np.ndarray, rng: np.random.Generator, h: float, s: float, v: float
) -> np.ndarray:
    """Random hue / saturation / value gains through lookup tables (BGR uint8 in and out)."""
    gains = rng.uniform(-1, 1, 3) * (h, s, v) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float32)
    lut_h = ((x * gains[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    merged = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return cv2.cvtColor(merged, cv2.COLOR_HSV2BGR)


def concat_instances(parts: list[Instances]) -> Instances:
    """One image's worth of instances from several (all with the same keypoint count)."""
    return Instances(boxes=np.concatenate([p.boxes for p in parts]),
                     keypoints=np.concatenate([p.keypoints for p in parts]),
                     classes=np.concatenate([p.classes for p in parts]))  # fmt: skip


def mosaic(
    images: list[np.ndarray], instances: list[Instances], size: Size, rng: np.random.Generator
) -> tuple[np.ndarray, Instances, list[np.ndarray]]:
    """YOLO's mosaic: four images around a random centre of a canvas twice `size`, each scaled
    to fit `size` and placed in its own quadrant with one corner on the centre (top-left,
    top-right, bottom-left, bottom-right), so they never overlap and instances are only cut by
    the canvas border. Returns the (2H, 2W) mosaic, its instances and each image's 3x3 matrix
    into it (continuous coordinates, like every matrix here)."""
    w, h = wh(size)
    big = (2 * w, 2 * h)
    xc, yc = rng.uniform(0.5 * w, 1.5 * w), rng.uniform(0.5 * h, 1.5 * h)
    out = np.full((2 * h, 2 * w, 3), PAD_VALUE, np.uint8)
    placed, matrices = [], []
    for q, (img, inst) in enumerate(zip(images, instances, strict=True)):
        ih, iw = img.shape[:2]
        s = min(w / iw, h / ih)
        tw, th = iw * s, ih * s
        x0 = xc - tw if q % 2 == 0 else xc
        y0 = yc - th if q < 2 else yc
        m = np.array([[s, 0.0, x0], [0.0, s, y0], [0.0, 0.0, 1.0]])
        # the pixels whose centres lie in the tile, clipped to the canvas
        c0, c1 = (int(np.clip(np.ceil(v - 0.5), 0, 2 * w)) for v in (x0, x0 + tw))
        r0, r1 = (int(np.clip(np.ceil(v - 0.5), 0, 2 * h)) for v in (y0, y0 + th))
        if c1 > c0 and r1 > r0:
            out[r0:r1, c0:c1] = warp(img, translation(-c0, -r0) @ m, (c1 - c0, r1 - r0))
        placed.append(transform_instances(inst, m, big))
        matrices.append(m)
    return out, concat_instances(placed), matrices
