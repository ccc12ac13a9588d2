"""Model summary: parameters and GFLOPs at a given input size (PyTorch's own FLOP counter)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class ModelSummary:
    name: str
    params: int
    gflops: float  # floating-point operations (2 per multiply-add), as Ultralytics reports
    imgsz: int

    def __str__(self) -> str:
        return (f"{self.name}: {self.params / 1e6:.2f} M parameters, {self.gflops:.1f} GFLOPs "
                f"at {self.imgsz}x{self.imgsz}")  # fmt: skip


def summarize_model(model: nn.Module, imgsz: int = 640, name: str | None = None) -> ModelSummary:
    """Count parameters and the FLOPs of one forward pass on a (1, 3, imgsz, imgsz) input."""
    params = sum(p.numel() for p in model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, imgsz, imgsz))
    finally:
        model.train(was_training)
    label = name or getattr(getattr(model, "config", None), "name", type(model).__name__)
    return ModelSummary(label, params, counter.get_total_flops() / 1e9, imgsz)
