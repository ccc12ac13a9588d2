"""Inference-only copy of a model with every BatchNorm folded into the convolution before it.

In eval mode BatchNorm is a fixed per-channel affine map, so conv -> BN equals one conv with
scaled weights and a bias. On 2 CPU cores BatchNorm took about a sixth of rtpose-n's time in
torch operations (a profile of `posekit track`); folded, the network runs about 11 % faster.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn

from posekit.models.blocks import ConvBNAct

M = TypeVar("M", bound=nn.Module)


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Rewrite `conv` in place so that it alone computes `bn(conv(x))` with `bn` in eval mode
    (its running statistics)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


def fused_for_inference(model: M) -> M:
    """A copy of `model` in eval mode with every `ConvBNAct` folded (the original is left as
    it is, so it can still be trained). Outputs agree with `model.eval()` to float rounding."""
    out = copy.deepcopy(model).eval()
    for m in out.modules():
        if isinstance(m, ConvBNAct) and isinstance(m.bn, nn.BatchNorm2d):
            fold_batchnorm(m.conv, m.bn)
            m.bn = nn.Identity()  # type: ignore[assignment]
    for p in out.parameters():
        p.requires_grad_(False)
    return out
