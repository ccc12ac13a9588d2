"""The export self-check: the exported file under ONNX Runtime against the PyTorch model, on
the same images, through the same prediction pipeline, compared after decoding.

An export that silently disagrees with its source is the failure users fear most, so
`posekit export` runs this and fails with the figure when the difference exceeds tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posekit.models.base import KeypointModel
from posekit.predict.backends import OnnxBackend
from posekit.predict.predictor import PredictConfig, Predictor, letterbox_batch
from posekit.predict.results import Results
from posekit.utils.errors import UserError

#: Largest differences accepted after decoding (fp32 graphs; fp16 ones get `HALF_TOLERANCE`):
#: keypoint pixels, scores, and raw outputs relative to their largest magnitude (at least 1).
TOLERANCE = (0.5, 1e-3, 1e-3)
HALF_TOLERANCE = (2.0, 2e-2, 5e-2)
#: Detections this close to the confidence threshold (or to the score of the last one kept
#: under `max_det`) may appear in one run only.
NEAR_THRESHOLD = 0.01
#: Detections kept per image in the check.
CHECK_MAX_DET = 100


@dataclass
class ExportCheck:
    """Largest differences between the backends on the check images."""

    images: int
    instances: int  # detections compared
    keypoint_px: float  # largest keypoint distance (x or y), image pixels
    score: float  # largest difference of an instance or keypoint confidence
    unmatched: int  # confident detections found by one backend only
    outputs: dict[str, float] = field(default_factory=dict)  # raw outputs: max |diff|
    relative: float = 0.0  # largest raw output difference / max(1, the output's magnitude)
    tolerance: tuple[float, float, float] = TOLERANCE

    @property
    def ok(self) -> bool:
        px, sc, rel = self.tolerance
        return (self.unmatched == 0 and self.keypoint_px <= px and self.score <= sc
                and self.relative <= rel)  # fmt: skip

    def describe(self) -> str:
        raw = ", ".join(f"{k} {v:.2g}" for k, v in self.outputs.items())
        px, sc, rel = self.tolerance
        return (f"ONNX Runtime vs PyTorch on {self.images} images, {self.instances} instances: "
                f"keypoints max {self.keypoint_px:.2g} px, scores max {self.score:.2g}, "
                f"unmatched {self.unmatched}; raw outputs max |diff| {raw} (relative "
                f"{self.relative:.2g}); tolerance {px} px, {sc}, relative {rel}")  # fmt: skip


def check_images(source: Any = None, n: int = 4) -> list[np.ndarray]:
    """Up to `n` images of `source` (anything `predict` reads), or rendered synthetic scenes
    of people (natural-looking content, not noise) when no source is given."""
    if source is not None:
        from posekit.predict.sources import iter_frames

        images = []
        for f in iter_frames(source):
            if f.image is not None:
                images.append(f.image)
            if len(images) == n:
                break
        if not images:
            raise UserError(f"{source}: no readable image to check the export on")
        return images
    from posekit.data.synth.generator import SynthConfig, render

    cfg = SynthConfig(kind="person", imgsz=640, seed=1)
    return [render(cfg, i).image for i in range(n)]


def _floor(r: Results, conf: float) -> float:
    """The score above which a detection of `r`'s image must be found by both runs: the
    confidence threshold, or the last kept score when `max_det` cut the list."""
    full = len(r) >= CHECK_MAX_DET
    return (float(r.boxes.conf.min()) if full else conf) + NEAR_THRESHOLD


#: Score difference that weighs as much as a pixel when detections are paired.
SCORE_PER_PIXEL = 1e-3


def _signature(r: Results) -> np.ndarray:
    """(N, 5 + 2K): each detection's box corners, keypoint positions and score (in pixels)."""
    xy = r.keypoints.xy.reshape(len(r), -1)
    return np.concatenate([r.boxes.xyxy, xy, r.boxes.conf[:, None] / SCORE_PER_PIXEL], 1)


def _lonely(a: Results, b: Results, conf: float) -> tuple[np.ndarray, np.ndarray]:
    """For each detection of `a`: the index of `b`'s nearest detection (box, keypoints and
    score: boxes clipped to the image, or an end-to-end head's neighbouring locations, can
    coincide), and whether it is a confident detection with no box of `b` within a pixel."""
    if len(a) == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    if len(b) == 0:
        return np.zeros(len(a), np.int64), a.boxes.conf > _floor(b, conf)
    j = np.abs(_signature(a)[:, None] - _signature(b)[None]).max(-1).argmin(1)  # L-inf
    far = np.abs(a.boxes.xyxy - b.boxes.xyxy[j]).max(-1) > 1.0
    return j, far & (a.boxes.conf > _floor(b, conf))


def _compare(a: Results, b: Results, conf: float) -> tuple[int, float, float, int]:
    """(pairs, keypoint px, score, unmatched) of one image's results: each detection is paired
    with the other run's detection of the nearest box."""
    j, lonely_a = _lonely(a, b, conf)
    _, lonely_b = _lonely(b, a, conf)
    unmatched = int(lonely_a.sum() + lonely_b.sum())
    if len(a) == 0 or len(b) == 0:
        return 0, 0.0, 0.0, unmatched
    paired = np.abs(a.boxes.xyxy - b.boxes.xyxy[j]).max(-1) <= 1.0
    if not paired.any():
        return 0, 0.0, 0.0, unmatched
    ka, kb = a.keypoints.data[paired], b.keypoints.data[j[paired]]
    px = float(np.abs(ka[..., :2] - kb[..., :2]).max())
    score = max(float(np.abs(ka[..., 2] - kb[..., 2]).max()),
                float(np.abs(a.boxes.conf[paired] - b.boxes.conf[j[paired]]).max()))  # fmt: skip
    return int(paired.sum()), px, score, unmatched


@torch.inference_mode()
def check_export(
    net: KeypointModel,
    path: str | Path,
    images: list[np.ndarray],
    *,
    imgsz: int,
    device: torch.device | None = None,
    half: bool = False,
    conf: float = 0.0,
) -> ExportCheck:
    """Run `images` through the prediction pipeline twice, with the PyTorch `net` (fp32) and
    with the exported file under ONNX Runtime (its decoder rebuilt from the file's metadata),
    and compare the results (every detection down to `conf`, `CHECK_MAX_DET` per image) and
    the raw outputs on a random batch."""
    from posekit.export.metadata import model_info

    device = device or torch.device("cpu")
    # a grouping family's faint people hang on near ties that the backends' last bits decide
    conf = max(conf, net.export_check_conf)
    info = model_info(path)
    onnx_backend = OnnxBackend(path, info.net, device)
    settings = {"conf": conf, "imgsz": imgsz, "max_det": CHECK_MAX_DET, "batch": len(images)}
    rect = onnx_backend.fixed_shape is None
    cfg = PredictConfig(**{**net.predict_defaults, **settings, "rect": rect})
    ours = Predictor(net, cfg, device=device)
    theirs = Predictor(info.net, cfg, device=device, backend=onnx_backend)
    pairs, px, score, lonely = 0, 0.0, 0.0, 0
    for a, b in zip(ours(images), theirs(images), strict=True):
        n, p, s, u = _compare(a, b, conf)
        pairs, px, score, lonely = pairs + n, max(px, p), max(score, s), lonely + u
    # the raw outputs on one batch: the letterboxed images (trained networks are
    # well-conditioned on natural content, not always on noise), or random crops
    x = net.example_input(onnx_backend.fixed_batch or 2)
    if net.input_mode.dynamic_size and onnx_backend.fixed_shape in (None, (imgsz, imgsz)):
        batch = [images[i % len(images)] for i in range(len(x))]
        x = letterbox_batch(batch, imgsz, rect=False)[0].float() / 255
    elif net.input_mode.dynamic_size:
        x = torch.rand(len(x), 3, *onnx_backend.fixed_shape)
    torch_out = net.export_outputs(ours.backend(x))
    onnx_out = net.export_outputs(onnx_backend(x))
    raw, relative = {}, 0.0
    for name, t, o in zip(net.export_output_names(), torch_out, onnx_out, strict=True):
        t, o = t.float().cpu(), o.float().cpu()
        raw[name] = float((t - o).abs().max())
        relative = max(relative, raw[name] / max(1.0, float(t.abs().max())))
    tol = HALF_TOLERANCE if half else TOLERANCE
    return ExportCheck(len(images), pairs, px, score, lonely, raw, relative, tol)
