"""Heatmap codec of top-down models: UDP Gaussian targets, DARK-UDP decoding, flip test.

All functions work on whole batches (N crops x K keypoints) with tensor operations, no Python
loop over crops or keypoints. Heatmap coordinates are pixel indices of the heatmap; see
`posekit.data.crops` for how they relate to image coordinates.

Decoding follows the reference post-processing of Hugging Face `transformers`' ViTPose (the
arg-max, then one Newton step on the log of the heatmap smoothed by a Gaussian of sigma 0.8
over an 11-pixel window, DARK's Taylor expansion), so that published weights give the same
keypoints as there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def udp_targets(
    xy: torch.Tensor, weights: torch.Tensor, size: tuple[int, int], sigma: float = 2.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian heatmaps (N, K, H, W) for keypoints `xy` (N, K, 2) in heatmap pixel indices,
    and the keypoint weights (N, K): `weights` where the Gaussian's 3-sigma window overlaps the
    heatmap, else 0. Each Gaussian peaks at the exact sub-pixel location (UDP)."""
    h, w = size
    radius = 3 * sigma
    ys = torch.arange(h, dtype=torch.float32, device=xy.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=xy.device).view(1, 1, 1, w)
    mx, my = xy[..., 0, None, None].float(), xy[..., 1, None, None].float()
    heat = torch.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / (2 * sigma**2))
    # cells outside the window around the rounded centre stay 0 (the reference's patch)
    cx, cy = (xy[..., 0] + 0.5).floor(), (xy[..., 1] + 0.5).floor()
    window = ((xs - cx[..., None, None]).abs() <= radius) & (
        (ys - cy[..., None, None]).abs() <= radius
    )
    heat = heat * window
    inside = (cx + radius >= 0) & (cy + radius >= 0) & (cx - radius < w) & (cy - radius < h)
    return heat, weights * inside


@dataclass(frozen=True)
class HeatmapEncoder:
    """Training targets of one crop: keypoints (K, 2) in crop-input pixel indices and their
    weights (K,) -> UDP heatmaps (K, H, W) and the weights left where a Gaussian overlaps."""

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float

    def __call__(self, xy: np.ndarray, weights: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        (h, w), (hh, hw) = self.input_size, self.heatmap_size
        hm_xy = xy * np.array([(hw - 1) / (w - 1), (hh - 1) / (h - 1)])
        heat, weight = udp_targets(torch.from_numpy(hm_xy).float()[None],
                                   torch.from_numpy(weights).float()[None], (hh, hw),
                                   self.sigma)  # fmt: skip
        return heat[0], weight[0]


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean squared error per keypoint heatmap, weighted by keypoint (MMPose's
    KeypointMSELoss with `use_target_weight`)."""
    per = ((pred - target) ** 2).mean((-1, -2))  # (N, K)
    return (per * weights).mean()


def heatmap_to_input(
    xy: torch.Tensor, input_size: tuple[int, int], heatmap_size: tuple[int, int]
) -> torch.Tensor:
    """Heatmap pixel indices (..., 2) -> crop-input pixel indices: heatmaps and crops span
    the same region index to index (UDP), so the scale is (input - 1) / (heatmap - 1)."""
    (h, w), (hh, hw) = input_size, heatmap_size
    scale = torch.tensor([(w - 1) / (hw - 1), (h - 1) / (hh - 1)], dtype=xy.dtype,
                         device=xy.device)  # fmt: skip
    return xy * scale


def flip_back(heatmaps: torch.Tensor, flip_index: torch.Tensor) -> torch.Tensor:
    """Heatmaps (N, K, H, W) of mirrored crops -> the unmirrored crops' heatmaps: mirror the
    width and swap left/right channels (`flip_index` (N, K)). No half-pixel shift: with UDP
    the mirror of index i is W - 1 - i exactly."""
    swapped = heatmaps.gather(1, flip_index[:, :, None, None].expand_as(heatmaps))
    return swapped.flip(-1)


def _gaussian_kernel(sigma: float, radius: int, device: torch.device) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    k = torch.exp(-0.5 * x**2 / sigma**2)
    return (k / k.sum()).float()


def _smooth(heatmaps: torch.Tensor, sigma: float, radius: int) -> torch.Tensor:
    """Separable Gaussian blur with mirrored borders that repeat the edge pixel (SciPy's
    'reflect' mode), on (N, K, H, W)."""
    n, k, h, w = heatmaps.shape
    kern = _gaussian_kernel(sigma, radius, heatmaps.device)
    x = heatmaps.reshape(n * k, 1, h, w).float()
    for dim in (3, 2):
        size = x.shape[dim]
        idx = torch.arange(-radius, size + radius, device=x.device)
        # reflect with the edge repeated: -1 -> 0, -2 -> 1, size -> size-1 ...
        idx = torch.where(idx < 0, -idx - 1, idx)
        idx = torch.where(idx >= size, 2 * size - idx - 1, idx)
        x = x.index_select(dim, idx.clamp(0, size - 1))
        weight = kern.view(1, 1, 1, -1) if dim == 3 else kern.view(1, 1, -1, 1)
        x = F.conv2d(x, weight)
    return x.reshape(n, k, h, w)


def decode_heatmaps(heatmaps: torch.Tensor, kernel: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (N, K, 2) in heatmap pixel indices and scores (N, K) from heatmaps
    (N, K, H, W): the arg-max refined by DARK on the smoothed log-heatmap (UDP variant).

    Scores are the heatmaps' maxima. A keypoint whose maximum is not positive keeps the
    reference's (-1, -1) marker before refinement.
    """
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1).float()
    scores, idx = flat.max(-1)
    xy = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], -1).float()
    xy = torch.where(scores[..., None] > 0, xy, torch.full_like(xy, -1.0))
    logh = _smooth(heatmaps, 0.8, (kernel - 1) // 2).clamp(0.001, 50).log()
    # one flat array of all padded maps, indexed as the reference indexes it (a (-1, -1)
    # marker's neighbours wrap into the previous map, as NumPy's negative indices do)
    padded = F.pad(logh.reshape(n * k, 1, h, w), (1, 1, 1, 1), mode="replicate").reshape(-1)
    area = (h + 2) * (w + 2)
    base = (xy[..., 1].long() + 1) * (w + 2) + xy[..., 0].long() + 1
    base = base + area * torch.arange(n * k, device=xy.device).view(n, k)

    def at(dx: int, dy: int) -> torch.Tensor:
        return padded[(base + dy * (w + 2) + dx) % padded.numel()]

    i0 = at(0, 0)
    ix1, ix1_ = at(1, 0), at(-1, 0)
    iy1, iy1_ = at(0, 1), at(0, -1)
    ix1y1, ix1_y1_ = at(1, 1), at(-1, -1)
    dx, dy = 0.5 * (ix1 - ix1_), 0.5 * (iy1 - iy1_)
    dxx, dyy = ix1 - 2 * i0 + ix1_, iy1 - 2 * i0 + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + 2 * i0 - ix1_ - iy1_ + ix1_y1_)
    # derivatives in float32, the Newton step in float64 (as the reference: a nearly singular
    # Hessian amplifies rounding)
    eps = torch.finfo(torch.float32).eps
    a, b, d = dxx.double() + eps, dxy.double(), dyy.double() + eps  # Hessian + eps * I
    det = a * d - b * b
    step_x = (d * dx.double() - b * dy.double()) / det
    step_y = (a * dy.double() - b * dx.double()) / det
    refined = (xy.double() - torch.stack([step_x, step_y], -1)).float()
    return refined, scores
