"""SimCC codec: keypoints as one classification over bins per axis (Li et al., ECCV 2022),
as RTMPose trains and decodes them.

A crop of width W has `W * split_ratio` x bins: bin b is the crop-input pixel index
b / split_ratio (the same UDP index coordinates as `posekit.data.crops`). Targets are
Gaussians over the bins centred at each keypoint's exact sub-bin position (sigma in bins, per
axis); the loss compares softmax(beta * logits) with softmax(beta * target) by KL divergence
(MMPose's `KLDiscretLoss` with label softmax). Decoding takes the arg-max bin, refines it by
the mean of softmax(beta * logits) over a +-3 sigma' window (sigma' = sigma / sqrt(beta), the
width of the trained distribution), and reports as confidence the probability mass inside
that window (the classifier's peak: about 1 when it is sure, small when its mass is spread),
the smaller of the two axes'. Everything works on whole batches (N crops x K keypoints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def gaussian_labels(mu: torch.Tensor, bins: int, sigma: float) -> torch.Tensor:
    """Unnormalised Gaussians (..., bins) peaking at 1 at the sub-bin positions `mu` (...)."""
    grid = torch.arange(bins, dtype=torch.float32, device=mu.device)
    return torch.exp(-((grid - mu[..., None].float()) ** 2) / (2 * sigma**2))


@dataclass(frozen=True)
class SimCCEncoder:
    """Training targets of one crop: keypoints (K, 2) in crop-input pixel indices and their
    weights (K,) -> x labels (K, W * ratio), y labels (K, H * ratio), the weights (0 where a
    keypoint's Gaussian lies wholly outside the bins, MMPose's rule) and the keypoints (K, 2)
    themselves (for the dense auxiliary loss)."""

    input_size: tuple[int, int]  # (height, width)
    split_ratio: float
    sigma: tuple[float, float]  # (x, y) in bins

    def __call__(
        self, xy: np.ndarray, weights: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        h, w = self.input_size
        nx, ny = round(w * self.split_ratio), round(h * self.split_ratio)
        mu = torch.from_numpy(xy * self.split_ratio).float()
        sx, sy = self.sigma
        inside = ((mu[:, 0] + 3 * sx >= 0) & (mu[:, 0] - 3 * sx < nx)
                  & (mu[:, 1] + 3 * sy >= 0) & (mu[:, 1] - 3 * sy < ny))  # fmt: skip
        weight = torch.from_numpy(weights).float() * inside
        return (gaussian_labels(mu[:, 0], nx, sx), gaussian_labels(mu[:, 1], ny, sy), weight,
                torch.from_numpy(xy).float())  # fmt: skip


def kl_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, beta: float = 10.0
) -> torch.Tensor:
    """KL(softmax(beta * labels) || softmax(beta * logits)) in nats per keypoint, weighted and
    averaged over crops and keypoints; logits and labels (N, K, bins).

    MMPose's `KLDiscretLoss` (with `use_target_weight`, `label_softmax`) has the same
    minimiser but averages over the bins and sums over the batch: at the small batches of a
    CPU its gradients are so small (about 1e-5 per logit at batch 8) that AdamW's epsilon damps
    the backbone's updates. In nats the gradient per logit is beta * (p - target) / (N K)."""
    log_p = F.log_softmax(logits.float() * beta, dim=-1)
    target = F.softmax(labels.float() * beta, dim=-1)
    per = F.kl_div(log_p, target, reduction="none").sum(-1)  # (N, K)
    return (per * weights).sum() / per.numel()


def dense_loss(
    maps: torch.Tensor, xy: torch.Tensor, weights: torch.Tensor, stride: int
) -> torch.Tensor:
    """Squared error between the head's keypoint maps (N, K, h, w) at `stride` and Gaussians
    of one cell's sigma at the keypoints `xy` (N, K, 2, crop-input pixel indices), summed over
    the cells, weighted, averaged over crops and keypoints.

    Not part of published RTMPose (whose backbone comes pretrained): from scratch, the SimCC
    loss alone reaches the backbone only through the flattened projection, and a whole-frame
    model then stalls at predicting where keypoints usually are; this dense signal tells the
    backbone where each keypoint is, as a heatmap model's loss does."""
    _n, _k, h, w = maps.shape
    cx = torch.arange(w, device=maps.device, dtype=torch.float32) * stride + (stride - 1) / 2
    cy = torch.arange(h, device=maps.device, dtype=torch.float32) * stride + (stride - 1) / 2
    dx = (cx - xy[..., 0, None]) / stride  # (N, K, w) in cells
    dy = (cy - xy[..., 1, None]) / stride
    target = torch.exp(-(dy[..., :, None] ** 2 + dx[..., None, :] ** 2) / 2)  # (N, K, h, w)
    per = ((maps.float() - target) ** 2).sum((-1, -2))
    return (per * weights).sum() / per.numel()


def window_radius(sigma: float, beta: float) -> int:
    """Bins on each side of the peak that hold +-3 sigma' of the trained distribution."""
    return max(1, math.ceil(3 * sigma / math.sqrt(beta)))


def decode_axis(
    logits: torch.Tensor, radius: int, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-bin positions (N, K) and peak masses (N, K) of logits (N, K, bins): the arg-max,
    refined by the mean of softmax(beta * logits) over +-radius bins around it (fewer near
    the ends, where the window stays symmetric about the peak so that it does not pull the
    mean inwards); the mass is that of the whole +-radius window inside the bins."""
    p = F.softmax(logits.float() * beta, dim=-1)
    bins = p.shape[-1]
    peak = p.argmax(-1)  # (N, K)
    offsets = torch.arange(-radius, radius + 1, device=p.device)
    idx = peak[..., None] + offsets  # (N, K, 2r+1)
    valid = (idx >= 0) & (idx < bins)
    near = p.gather(-1, idx.clamp(0, bins - 1)) * valid
    reach = torch.minimum(peak, bins - 1 - peak)[..., None]  # symmetric window half-width
    sym = near * (offsets.abs() <= reach)
    pos = (sym * idx).sum(-1) / sym.sum(-1).clamp_min(1e-12)
    return pos, near.sum(-1)


def decode_simcc(
    simcc_x: torch.Tensor,
    simcc_y: torch.Tensor,
    split_ratio: float,
    sigma: tuple[float, float],
    beta: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (N, K, 2) in crop-input pixel indices and confidences (N, K) in 0..1."""
    x, cx = decode_axis(simcc_x, window_radius(sigma[0], beta), beta)
    y, cy = decode_axis(simcc_y, window_radius(sigma[1], beta), beta)
    return torch.stack([x, y], -1) / split_ratio, torch.minimum(cx, cy)


def flip_back_x(
    simcc_x: torch.Tensor, flip_index: torch.Tensor, split_ratio: float
) -> torch.Tensor:
    """x logits (N, K, bins) of mirrored crops -> the unmirrored crops': swap left and right
    keypoints (`flip_index` (N, K)) and mirror the bins about the crop's centre. Pixel index i
    mirrors to W - 1 - i, so bin b mirrors to bins - split_ratio - b: a reversal shifted by
    split_ratio - 1 bins (the last bins, beyond the last pixel, repeat the edge)."""
    swapped = simcc_x.gather(1, flip_index[..., None].expand_as(simcc_x)).flip(-1)
    shift = round(split_ratio) - 1
    if shift == 0:
        return swapped
    edge = swapped[..., -1:].expand(*swapped.shape[:-1], shift)
    return torch.cat([swapped[..., shift:], edge], -1)


def flip_back_y(simcc_y: torch.Tensor, flip_index: torch.Tensor) -> torch.Tensor:
    """y logits of mirrored crops -> the unmirrored crops': only left and right swap."""
    return simcc_y.gather(1, flip_index[..., None].expand_as(simcc_y))
