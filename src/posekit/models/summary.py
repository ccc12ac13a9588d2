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
    imgsz: int  # the input's longer side
    input_hw: tuple[int, int] = (0, 0)  # (height, width) of the measured input

    def __str__(self) -> str:
        h, w = self.input_hw if self.input_hw != (0, 0) else (self.imgsz, self.imgsz)
        return (f"{self.name}: {self.params / 1e6:.2f} M parameters, {self.gflops:.1f} GFLOPs "
                f"at {w}x{h}")  # fmt: skip


def summarize_model(model: nn.Module, imgsz: int = 640, name: str | None = None) -> ModelSummary:
    """Count parameters and the FLOPs of one forward pass on one input: `imgsz` x `imgsz`, or
    the fixed crop size of a model that has one (`config.input_size`, top-down models)."""
    params = sum(p.numel() for p in model.parameters())
    fixed = getattr(getattr(model, "config", None), "input_size", None)
    h, w = tuple(fixed) if fixed is not None else (imgsz, imgsz)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            # on the parameters' device: a weightless (meta) model of an ONNX file counts too
            device = next(model.parameters()).device
            model(torch.zeros(1, 3, h, w, device=device))
    finally:
        model.train(was_training)
    label = name or getattr(getattr(model, "config", None), "name", type(model).__name__)
    return ModelSummary(label, params, counter.get_total_flops() / 1e9, max(h, w), (h, w))
