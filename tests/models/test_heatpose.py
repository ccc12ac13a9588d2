"""HeatPose's own parts: the pyramid decoder's output grid and the heatmap codec at its
stride-4 size (the codec itself is tested with ViTPose); the rest of the family is covered by
the contract and export tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posekit.models import create


@pytest.mark.parametrize("input_size", [(256, 192), (384, 512)])
def test_heatmaps_are_a_quarter_of_the_crop_and_decode_back_to_the_keypoints(
    input_size: tuple[int, int],
) -> None:
    h, w = input_size
    net = create("heatpose-t", "coco17", input_size=input_size).eval()
    with torch.inference_mode():
        out = net(torch.rand(2, 3, h, w))
    assert out.shape == (2, 17, h // 4, w // 4) and net.config.heatmap_size == (h // 4, w // 4)
    # targets made by the family's encoder decode to the keypoints (UDP + DARK)
    rng = np.random.default_rng(0)
    xy = rng.uniform([12, 12], [w - 13, h - 13], (17, 2))
    heat, weights = net.crop_encoder()(xy, np.ones(17))
    decoded, scores = net.decode_crops(heat[None])
    np.testing.assert_allclose(decoded[0].numpy(), xy, atol=0.05)
    assert weights.all() and scores.min() > 0.9


def test_decoder_merges_every_stage() -> None:
    """Each stage reaches the heatmaps: a change at any stride moves the output."""
    net = create("heatpose-t", "coco17").eval()
    torch.nn.init.normal_(net.decoder.final.weight, std=0.1)
    stages = net.backbone.stage_outputs(torch.rand(1, 3, 256, 192))
    assert [s.shape[-1] for s in stages] == [48, 24, 12, 6]
    with torch.inference_mode():
        base = net.decoder(stages)
        for i in range(4):
            changed = [s + (j == i) for j, s in enumerate(stages)]
            assert not torch.allclose(net.decoder(changed), base)
