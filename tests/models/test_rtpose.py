"""Every registered model builds, runs forward and backward, and survives a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from posekit.engine.checkpoint import load_model, save_checkpoint
from posekit.models import create, list_models, summarize_model
from posekit.schema import KeypointSchema, get_schema


def test_all_sizes_are_registered() -> None:
    assert {f"rtpose-{s}" for s in "nsmlx"} <= set(list_models())
    with pytest.raises(ValueError, match="unknown model 'rtpose-q'"):
        create("rtpose-q")


@pytest.mark.parametrize("name", sorted(n for n in list_models() if n.startswith("rtpose-")))
def test_forward_backward_and_checkpoint(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create(name, "coco17")
    x = torch.rand(2, 3, 64, 96)
    out = model(x)
    a = (64 // 8) * (96 // 8) + (64 // 16) * (96 // 16) + (64 // 32) * (96 // 32)
    assert out.cls_logits.shape == (2, a, 1) and out.boxes.shape == (2, a, 4)
    assert out.keypoints.shape == (2, a, 17, 2) and out.kpt_logits.shape == (2, a, 17)
    assert out.heatmap.shape == (2, 17, 8, 12) and out.heatmap_offset.shape == (2, 17, 2, 8, 12)
    loss = out.cls_logits.sum() + out.boxes.mean() + out.keypoints.mean() + out.kpt_logits.sum()
    loss = loss + out.heatmap.sum() + out.heatmap_offset.sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    path = save_checkpoint(tmp_path / "m.pt", model, epoch=3)
    again, data = load_model(path)
    assert data["epoch"] == 3
    assert again.schemas == model.schemas and again.names == model.names
    with torch.no_grad():
        torch.testing.assert_close(again(x).keypoints, model(x).keypoints)
        torch.testing.assert_close(again(x).heatmap, model(x).heatmap)


def test_rtpose_n_is_in_the_nano_compute_class() -> None:
    s = summarize_model(create("rtpose-n", "coco17"), 640)
    assert 2.5e6 < s.params < 3.5e6
    assert s.gflops < 10
    assert "GFLOPs" in str(s)


def test_several_classes_with_different_keypoint_counts() -> None:
    a = KeypointSchema.create("arm", ["base", "tip_left", "tip_right"])
    model = create("rtpose-n", [get_schema("coco17"), a], width=0.5)
    out = model(torch.rand(1, 3, 64, 64))
    assert out.cls_logits.shape[-1] == 2 and out.keypoints.shape[2] == 17
    assert model.names == ["person", "arm"]
