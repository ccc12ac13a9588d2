"""Instance crops for top-down models: box -> centre and size -> affine warp, and the exact
inverse back to image pixels.

Conventions. Image coordinates are continuous (the top-left pixel's centre is (0.5, 0.5), as
everywhere in posekit). A crop follows UDP (Huang et al., CVPR 2020, "unbiased data
processing"): the crop region of width `w` maps onto the output's pixel *indices* 0 .. W-1, so
its left edge lands on the centre of the first output pixel and its right edge on the centre of
the last; heatmaps of size Wh are the same region at indices 0 .. Wh-1. Every mapping is one
3x3 matrix from image (continuous) to crop (index) coordinates, so keypoints, the warp and the
inverse all use the same numbers.
"""

from __future__ import annotations

import cv2
import numpy as np


def boxes_to_regions(
    boxes: np.ndarray, aspect: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Crop regions around xyxy boxes (N, 4): centres (N, 2) and sizes (N, 2) with width /
    height = `aspect` (the smaller side grown to fit) and both sides times `padding`. A
    degenerate box (a point or a line) gets at least one pixel per side."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    w = np.maximum(np.abs(boxes[:, 2] - boxes[:, 0]), 1.0)
    h = np.maximum(np.abs(boxes[:, 3] - boxes[:, 1]), 1.0)
    w, h = np.maximum(w, h * aspect), np.maximum(h, w / aspect)
    return centres, np.stack([w, h], -1) * padding


def crop_matrices(
    centres: np.ndarray,
    sizes: np.ndarray,
    out_hw: tuple[int, int],
    *,
    angles: np.ndarray | None = None,
    flips: np.ndarray | None = None,
) -> np.ndarray:
    """(N, 3, 3) matrices from image coordinates to crop pixel indices (UDP, see the module
    docstring); `angles` (degrees) rotate the region about its centre, `flips` mirror the
    crop horizontally (the caller swaps left/right keypoints)."""
    n = len(centres)
    h_out, w_out = out_hw
    sx = (w_out - 1) / sizes[:, 0]
    sy = (h_out - 1) / sizes[:, 1]
    theta = np.deg2rad(angles) if angles is not None else np.zeros(n)
    cos, sin = np.cos(theta), np.sin(theta)
    m = np.zeros((n, 3, 3))
    # rotate about the centre, scale to output indices, put the centre mid-output
    m[:, 0, 0], m[:, 0, 1] = sx * cos, sx * sin
    m[:, 1, 0], m[:, 1, 1] = -sy * sin, sy * cos
    m[:, 0, 2] = (w_out - 1) / 2 - m[:, 0, 0] * centres[:, 0] - m[:, 0, 1] * centres[:, 1]
    m[:, 1, 2] = (h_out - 1) / 2 - m[:, 1, 0] * centres[:, 0] - m[:, 1, 1] * centres[:, 1]
    m[:, 2, 2] = 1
    if flips is not None and np.any(flips):
        mirror = np.array([[-1.0, 0, w_out - 1], [0, 1, 0], [0, 0, 1]])
        m[flips] = mirror @ m[flips]
    return m


def warp_crops(image: np.ndarray, matrices: np.ndarray, out_hw: tuple[int, int],
               out: np.ndarray | None = None, pixel_centre: float = 0.5) -> np.ndarray:  # fmt: skip
    """The crops (N, H, W, 3) of one image (bilinear, padded with black as the top-down
    trainers of published weights pad), written
    into `out` when given (one array for all crops of a batch, not one per crop).

    `pixel_centre` is where pixel i's centre lies in the coordinates the matrices read: 0.5
    in posekit's continuous coordinates, 0 for models trained on pixel indices (MMPose and
    transformers, so published weights see exactly the crops they were trained on)."""
    h, w = out_hw
    n = len(matrices)
    if out is None:
        out = np.empty((n, h, w, image.shape[2]), dtype=image.dtype)
    # OpenCV maps source pixel indices; image coordinates are indices + `pixel_centre`
    to_index = np.array([[1.0, 0, pixel_centre], [0, 1, pixel_centre], [0, 0, 1]])
    for i in range(n):
        cv2.warpAffine(image, (matrices[i] @ to_index)[:2], (w, h), dst=out[i],
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=(0, 0, 0))  # fmt: skip
    return out


def to_crop(xy: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Image coordinates (N, K, 2) -> crop pixel indices (N, K, 2)."""
    return np.einsum("nij,nkj->nki", matrices[:, :2, :2], xy) + matrices[:, None, :2, 2]


def from_crop(xy: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Crop pixel indices (N, K, 2) -> image coordinates, through the exact inverse."""
    return to_crop(xy, np.linalg.inv(matrices))
