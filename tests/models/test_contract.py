"""The model contract, for every registered model: build, forward, the family's own loss and
backward, decode, and a checkpoint round trip, using only what the trainer, validation and the
predictor use (so a new family is covered by registering it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from posekit.engine.checkpoint import load_model, save_checkpoint
from posekit.models import FAMILIES, Detections, KeypointModel, Targets, create, list_models
from posekit.models.base import model_from_description
from posekit.schema import KeypointSchema

SCHEMA = KeypointSchema.create("thing", ["centre", "left_end", "right_end"])


def _targets(batch: int, k: int) -> Targets:
    boxes = torch.tensor([[8.0, 10.0, 40.0, 50.0]]).expand(batch, 1, 4).clone()
    kps = torch.tensor([[[20.0, 20.0, 2.0], [12.0, 40.0, 2.0], [36.0, 40.0, 1.0]]])
    classes = torch.zeros(batch, 1, dtype=torch.long)
    mask = torch.ones(batch, 1, dtype=torch.bool)
    return Targets(boxes, classes, kps[:, :k].expand(batch, 1, k, 3).clone(), mask)


@pytest.mark.parametrize("name", sorted(list_models()))
def test_model_contract(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create(name, SCHEMA)
    assert isinstance(model, KeypointModel) and FAMILIES.get(model.family) is type(model)
    x = torch.rand(2, 3, 64, 96)
    out = model(x)
    loss, parts = model.loss(out, _targets(2, model.num_keypoints))
    assert loss.ndim == 0 and torch.isfinite(loss) and parts
    assert all(isinstance(v, float) for v in parts.values())
    loss.backward()
    assert sum(p.grad is not None for p in model.parameters()) > 0.9 * len(list(model.parameters()))

    model.eval()
    with torch.no_grad():
        dets = model.decode(model(x), conf=0.0, max_det=5)
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    for d in dets:
        n = len(d.scores)
        assert d.boxes.shape == (n, 4) and d.keypoints.shape == (n, 3, 3) and n <= 5

    path = save_checkpoint(tmp_path / "m.pt", model, epoch=1)
    again, _ = load_model(path)
    assert type(again) is type(model) and again.schemas == model.schemas
    assert model_from_description(model.describe()).config == model.config
    with torch.no_grad():
        a, b = again.decode(again(x), conf=0.0), model.decode(model(x), conf=0.0)
    for da, db in zip(a, b, strict=True):
        torch.testing.assert_close(da.keypoints, db.keypoints)


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown model family 'nope'; registered: rtpose"):
        model_from_description({"architecture": "nope"})
