"""Exponential moving average of model weights (what validation and checkpoints use)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """Keeps `decay * ema + (1 - decay) * model` after each step; the decay ramps up from 0
    over the first ~`tau` updates so the average is not dominated by the random init."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0,
                 updates: int = 0) -> None:  # fmt: skip
        self.ema = copy.deepcopy(model).eval()
        self.updates, self.decay, self.tau = updates, decay, tau
        for p in self.ema.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        msd = model.state_dict()
        floats, targets = [], []
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                floats.append(v)
                targets.append(msd[k].detach())
            else:
                v.copy_(msd[k])
        # one fused call instead of two kernels per tensor (hundreds per step)
        torch._foreach_lerp_(floats, targets, 1 - d)
