"""What every lifting family (2D keypoints over time -> 3D) reads, and what its outputs are
relative to.

Inputs are camera-normalised: a pixel (x, y) (OpenCV's convention) becomes the direction
((x - cx) / fx, (y - cy) / fy) through the camera's centre, so that clips filmed with any
focal length and image size look alike, and perspective (near limbs larger) stays readable;
the third channel is 1 for a keypoint the detector reported and (0, 0, 0) stands for one it
did not. Not the confidence itself: each detector calibrates its own differently (a
heatmap's peak, a sigmoid), and a lifter must not learn one detector's.
Outputs are metres in the camera's frame (x right, y down, z forward) relative to the root:
the middle of the hips where the schema has them (as Human3.6M's pelvis), else the mean of
every keypoint.
"""

from __future__ import annotations

import numpy as np

from posekit.schema import KeypointSchema


def root_weights(schema: KeypointSchema) -> np.ndarray:
    """(K,) weights whose sum of keypoints is the root (see the module docstring)."""
    names = list(schema.keypoints)
    weights = np.zeros(len(names))
    if "mid_hip" in names:
        weights[names.index("mid_hip")] = 1.0
    elif "left_hip" in names and "right_hip" in names:
        weights[[names.index("left_hip"), names.index("right_hip")]] = 0.5
    else:
        weights[:] = 1.0 / len(names)
    return weights


def root_relative(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(..., K, 3) points less their root; a pose whose root keypoints are missing is NaN."""
    used = weights > 0
    root = np.einsum("k,...kc->...c", weights[used], points[..., used, :])
    return points - root[..., None, :]


def normalised_inputs(keypoints2d: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(..., T, K, 3) network inputs from (..., T, K, 3) pixels and confidences and the
    camera's (..., 4) fx, fy, cx, cy (see the module docstring); float32."""
    k = np.asarray(keypoints2d, dtype=np.float64)
    cam = np.asarray(intrinsics, dtype=np.float64)[..., None, None, :]
    out = np.empty(k.shape, dtype=np.float32)
    out[..., 0] = (k[..., 0] - cam[..., 2]) / cam[..., 0]
    out[..., 1] = (k[..., 1] - cam[..., 3]) / cam[..., 1]
    seen = np.isfinite(out[..., :2]).all(-1) & (k[..., 2] > 0)
    out[..., 2] = seen
    out[~seen] = 0.0
    return out


def mirrored(
    inputs: np.ndarray, points: np.ndarray, flip_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and 3D points of the clip mirrored left to right (about the camera's vertical
    plane), left and right keypoints swapped: a clip just as real as the original."""
    inputs, points = inputs[..., flip_idx, :].copy(), points[..., flip_idx, :].copy()
    inputs[..., 0] = -inputs[..., 0]  # a missing keypoint's 0 stays 0
    points[..., 0] = -points[..., 0]
    return inputs, points
