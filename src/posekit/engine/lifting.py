"""Validation of lifting networks: every clip of a sequence split lifted whole (as `lift` runs
at inference) and compared with its 3D truth, root-relative, in millimetres.

`posekit val` and the trainer's validation both call `evaluate_lifting`; the metrics are
`posekit.eval.pose3d`'s: MPJPE, P-MPJPE (after Procrustes), N-MPJPE (after scale), the
velocity error, and MPJPE per joint.
"""

from __future__ import annotations

import numpy as np
import torch

from posekit.data.sequences import PoseSequences
from posekit.eval.pose3d import LiftMetrics, pose3d_metrics
from posekit.models.base import KeypointModel
from posekit.models.lift_codec import normalised_inputs, root_relative, root_weights


@torch.inference_mode()
def evaluate_lifting(
    net: KeypointModel,
    ds: PoseSequences,
    device: torch.device,
    *,
    batch: int = 16,
    exact_2d: bool = False,
) -> LiftMetrics:
    """`net` on every clip of `ds` (`batch` clips at a time) against its truth (see the module
    docstring). `exact_2d` feeds the exact projections of the truth instead of the dataset's
    detected 2D (the lifting error alone, without the detector's)."""
    keypoints2d = exact_pixels(ds) if exact_2d else ds.keypoints2d
    inputs = normalised_inputs(keypoints2d, ds.intrinsics)
    was_training = net.training
    net.eval()
    try:
        parts = [
            net.lift(torch.from_numpy(inputs[i : i + batch]).to(device)).double().cpu()
            for i in range(0, len(inputs), batch)
        ]
    finally:
        net.train(was_training)
    predicted = torch.cat(parts).numpy()
    truth = root_relative(ds.keypoints3d.astype(np.float64), root_weights(ds.schema))
    metrics = pose3d_metrics(predicted * 1000.0, truth * 1000.0)
    return LiftMetrics(metrics, list(ds.schema.keypoints), len(ds), len(ds) * ds.frames)


def exact_pixels(ds: PoseSequences) -> np.ndarray:
    """(N, T, K, 3) the truth projected by each clip's pinhole camera, confidence 1 (NaN
    where the truth is unknown or behind the camera)."""
    p = ds.keypoints3d.astype(np.float64)
    fx, fy, cx, cy = (ds.intrinsics[:, i, None, None] for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(p[..., 2] > 0, p[..., 2], np.nan)
        out = np.stack(
            [fx * p[..., 0] / z + cx, fy * p[..., 1] / z + cy, np.ones(p.shape[:-1])], -1
        )
    out[~np.isfinite(out[..., :2]).all(-1)] = np.nan
    return out
