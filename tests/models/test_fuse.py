"""Folding BatchNorm into convolutions for inference: same outputs, original untouched."""

from __future__ import annotations

import torch
from torch import nn

from posekit import Model
from posekit.models import create
from posekit.models.fuse import fused_for_inference


def _with_trained_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters (fresh ones are the identity)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
    return model


def test_folded_network_matches_the_original_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = _with_trained_statistics(create("rtpose-n", "coco17", width=0.5))
    model.train()
    fused = fused_for_inference(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert model.training and any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())  # the original stays trainable
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        a, b = model.eval()(x), fused(x)
    for name in ("cls_logits", "boxes", "keypoints", "kpt_logits", "heatmap", "heatmap_offset"):
        torch.testing.assert_close(getattr(b, name), getattr(a, name), rtol=1e-4, atol=1e-4)


def test_model_rebuilds_its_folded_copy_when_the_weights_change() -> None:
    model = Model("rtpose-n")
    first = model.inference_net
    assert model.inference_net is first  # cached between predict calls
    with torch.no_grad():
        next(model.net.parameters()).add_(1.0)  # an in-place edit of the original
    second = model.inference_net
    assert second is not first
    model.net = create("rtpose-n", "coco17")
    assert model.inference_net is not second
