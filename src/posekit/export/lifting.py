"""ONNX export of lifting networks, and its parity check.

The graph takes `keypoints` (batch, frames, K, 3): camera-normalised x, y and a seen flag
per keypoint (`posekit.models.lift_codec`), any batch and any number of frames from the
receptive field up; it returns `points3d` (batch, frames - receptive field + 1, K, 3), the
root-relative 3D in metres of each full window (pad a clip's ends by repeating its first and
last frames, receptive field - 1 frames in all, for one pose per frame, as `lift` does). The
file's metadata (`posekit.*` keys) names the family, its config, the schema and this layout.
The check runs the file with ONNX Runtime and the network with PyTorch on the same random
windows and fails beyond 1e-4 m (0.1 mm).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from posekit.export.metadata import PREFIX
from posekit.export.onnx import DEFAULT_OPSET, MAX_BATCH, ExportResult, write_graph
from posekit.models.base import KeypointModel

#: the largest difference (metres) the check lets pass between ONNX Runtime and PyTorch
TOLERANCE_M = 1e-4
#: the longest window the graph is declared for (frames)
MAX_FRAMES = 100_000


@dataclass
class LiftExportCheck:
    """The largest difference between the backends on random windows."""

    windows: int
    frames: int  # frames per window
    max_diff_m: float
    tolerance_m: float = TOLERANCE_M

    @property
    def ok(self) -> bool:
        return self.max_diff_m <= self.tolerance_m

    def describe(self) -> str:
        return (
            f"ONNX Runtime vs PyTorch on {self.windows} windows of {self.frames} frames: "
            f"3D points max |diff| {self.max_diff_m * 1000:.2g} mm (tolerance "
            f"{self.tolerance_m * 1000:g} mm)"
        )


def export_lifting(
    net: KeypointModel,
    out: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    device: torch.device | None = None,
) -> ExportResult:
    """Write lifting network `net` as an ONNX graph at `out` (see the module docstring)."""
    from posekit import __version__

    device = device or torch.device("cpu")
    rf = net.receptive_field
    shape = ("batch", "frames", net.num_keypoints, 3)
    frames = torch.export.Dim("frames", min=rf, max=MAX_FRAMES)
    dynamic = {"images": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH), 1: frames}}
    desc = net.describe()
    graph_input = {
        "name": "keypoints",
        "kind": "keypoints",
        "layout": "NTKC",
        "shape": list(shape),
        "channels": ["x", "y", "seen"],
        "normalisation": "((x - cx) / fx, (y - cy) / fy) in OpenCV's pixels; a missing "
        "keypoint is (0, 0, 0)",
        "receptive_field": rf,
        "output": "root-relative 3D keypoints in metres, the camera's frame",
    }
    values = {
        "family": desc["architecture"],
        "config": desc["config"],
        "schemas": desc["schemas"],
        "names": desc["names"],
        "input": graph_input,
        "outputs": net.export_output_names(),
    }
    meta = {PREFIX + k: json.dumps(v) for k, v in values.items()}
    meta[PREFIX + "version"] = __version__
    example = net.example_input(2)
    seconds = write_graph(net, out, example, "keypoints", dynamic, meta, opset=opset, device=device)
    return ExportResult(Path(out), shape, opset, False, seconds, stride=1, input_name="keypoints")


@torch.inference_mode()
def check_lifting_export(
    net: KeypointModel, path: str | Path, windows: int = 4, seed: int = 0
) -> LiftExportCheck:
    """`net` and the exported file at `path` on the same random windows (see the module
    docstring)."""
    import onnxruntime as ort

    gen = torch.Generator().manual_seed(seed)
    frames = net.receptive_field + 16
    x = torch.randn(windows, frames, net.num_keypoints, 3, generator=gen) * 0.2
    x[..., 2] = torch.rand(windows, frames, net.num_keypoints, generator=gen)
    was_training = net.training
    net.eval()
    try:
        ours = net(x).double().numpy()
    finally:
        net.train(was_training)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"keypoints": x.numpy()})[0]
    diff = float(np.abs(ours - theirs).max())
    return LiftExportCheck(windows, frames, diff)
