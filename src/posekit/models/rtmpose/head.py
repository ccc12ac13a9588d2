"""RTMPose's SimCC head: a large-kernel convolution to one map per keypoint, each map
flattened and projected to a keypoint token, a gated attention unit across the keypoint
tokens, and one linear classifier per axis over the SimCC bins."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ScaleNorm(nn.Module):
    """x / (||x|| / sqrt(d)) * g: an RMS-style norm with one learnt gain."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class GatedAttentionUnit(nn.Module):
    """Gated attention over the K keypoint tokens (Hua et al., 2022, as RTMPose's RTMCC
    block): one projection to a gate u, a value v and a shared base from which q and k are
    scaled, squared-ReLU attention, the gate times the attended values, a projection, and a
    learnt-scale residual."""

    def __init__(self, dim: int, expansion: int = 2, s: int = 128) -> None:
        super().__init__()
        self.e, self.s = dim * expansion, s
        self.norm = ScaleNorm(dim)
        self.uv = nn.Linear(dim, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand(2, s))
        self.beta = nn.Parameter(torch.zeros(2, s))
        self.out = nn.Linear(self.e, dim, bias=False)
        self.res_scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v, base = F.silu(self.uv(self.norm(x))).split([self.e, self.e, self.s], -1)
        qk = base[..., None, :] * self.gamma + self.beta  # (B, K, 2, s)
        q, k = qk.unbind(-2)
        attention = F.relu(q @ k.transpose(1, 2) / math.sqrt(self.s)) ** 2  # (B, K, K)
        return x * self.res_scale + self.out(u * (attention @ v))


class SimCCHead(nn.Module):
    """Stride-32 features (B, C, h, w) -> x logits (B, K, W * ratio), y logits (B, K, H * ratio)."""

    def __init__(self, c_in: int, k: int, feature_hw: tuple[int, int], bins: tuple[int, int],
                 hidden: int = 256, kernel: int = 7, gau: bool = True) -> None:  # fmt: skip
        super().__init__()
        flat = feature_hw[0] * feature_hw[1]
        self.final = nn.Conv2d(c_in, k, kernel, 1, kernel // 2)
        self.norm = ScaleNorm(flat)
        self.project = nn.Linear(flat, hidden, bias=False)
        self.gau = GatedAttentionUnit(hidden) if gau else nn.Identity()
        self.cls_x = nn.Linear(hidden, bins[0], bias=False)
        self.cls_y = nn.Linear(hidden, bins[1], bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """RTMPose's head initialisation: small normal weights (linear std 0.01, the
        convolution 0.001), so that training starts from nearly uniform classifiers instead of
        confident random peaks (beta = 10 sharpens any initial noise)."""
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x logits, y logits, the K stride-32 maps the tokens come from)."""
        maps = self.final(x)  # (B, K, h, w)
        tokens = self.gau(self.project(self.norm(maps.flatten(2))))  # (B, K, hidden)
        return self.cls_x(tokens), self.cls_y(tokens), maps
