"""Dense training targets shared by the families that draw them: Gaussian keypoint heatmaps
with a running maximum over instances, touching only the cells near each keypoint (no
(instances, H, W) intermediate)."""

from __future__ import annotations

import math

import torch


def gaussian_planes(
    u: torch.Tensor, v: torch.Tensor, plane: torch.Tensor, planes: int, size: tuple[int, int],
    sigma: float, *, on_cell: bool = True,
) -> torch.Tensor:  # fmt: skip
    """(planes, H, W) maps with a Gaussian of `sigma` cells at each point (u, v) (continuous
    cell coordinates: cell (i, j) is centred on (j, i)) drawn into its plane, the maximum where
    they overlap, out to 3 sigma. With `on_cell` each Gaussian is centred on the point's
    nearest cell, so that cell's value is exactly 1 (a peak the focal loss can call positive,
    the offset regressed apart); else on the point itself, so the map's own shape says where
    the point lies between cells."""
    h, w = size
    heat = torch.zeros(planes * h * w, device=u.device)
    if len(u) == 0:
        return heat.view(planes, h, w)
    r = math.ceil(3 * sigma)
    d = torch.arange(-r, r + 1, device=u.device)
    dy, dx = (g.reshape(-1) for g in torch.meshgrid(d, d, indexing="ij"))
    cx, cy = u.round().long()[:, None] + dx, v.round().long()[:, None] + dy  # (n, (2r+1)^2)
    if on_cell:
        g = torch.exp(-(dx**2 + dy**2).float() / (2 * sigma**2)).expand_as(cx)
    else:
        g = torch.exp(-((cx - u[:, None]) ** 2 + (cy - v[:, None]) ** 2) / (2 * sigma**2))
    inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
    flat = ((plane[:, None] * h + cy) * w + cx)[inside]
    heat.scatter_reduce_(0, flat, g[inside], "amax")
    return heat.view(planes, h, w)
