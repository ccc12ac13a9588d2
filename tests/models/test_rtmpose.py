"""RTMPose's own parts: the SimCC codec (labels, decoding, flip test, loss) and the head; the
rest of the family is covered by the contract and export tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posekit.models import create
from posekit.models.rtmpose.simcc import (
    SimCCEncoder,
    decode_simcc,
    flip_back_x,
    flip_back_y,
    kl_loss,
)

SIGMA = (4.9, 5.66)


@pytest.mark.parametrize("input_size", [(256, 192), (384, 512)])
def test_simcc_round_trip_is_within_a_bin(input_size: tuple[int, int]) -> None:
    h, w = input_size
    rng = np.random.default_rng(0)
    xy = rng.uniform([0, 0], [w - 1, h - 1], (200, 2))
    xy[:4] = [[0, 0], [w - 1, h - 1], [0.3, h - 1.2], [w - 1.4, 0.2]]  # at the edges
    enc = SimCCEncoder(input_size, 2.0, SIGMA)
    lx, ly, weights, _ = enc(xy, np.ones(len(xy)))
    assert lx.shape == (200, 2 * w) and ly.shape == (200, 2 * h) and weights.all()
    # a classifier whose distribution is the label's decodes to the keypoint
    decoded, conf = decode_simcc(lx[None], ly[None], 2.0, SIGMA)
    err = np.abs(decoded[0].numpy() - xy)
    assert err.max() < 1 / 2  # 1 / split ratio
    inside = ((xy > 10) & (xy < np.array([w, h]) - 10)).all(1)
    assert err[inside].max() < 0.01  # the window mean is unbiased away from the edges
    assert conf.min() > 0.95  # all the mass at the peak: sure


def test_simcc_confidence_is_low_for_a_spread_distribution() -> None:
    flat = torch.zeros(1, 2, 384)
    _, conf = decode_simcc(flat, torch.zeros(1, 2, 512), 2.0, SIGMA)
    assert conf.max() < 0.05


def test_keypoints_far_outside_the_crop_get_no_weight() -> None:
    enc = SimCCEncoder((256, 192), 2.0, SIGMA)
    xy = np.array([[-40.0, 100.0], [100.0, 300.0], [-2.0, 100.0], [100.0, 100.0]])
    _, _, w, _ = enc(xy, np.array([1.0, 1.0, 1.0, 0.0]))
    assert w.tolist() == [0.0, 0.0, 1.0, 0.0]  # 2 px outside: its Gaussian still overlaps


def test_flip_back_mirrors_pixel_i_onto_w_minus_1_minus_i() -> None:
    w, h = 192, 256
    rng = np.random.default_rng(1)
    xy = rng.uniform([5, 5], [w - 6, h - 6], (3, 2))
    enc = SimCCEncoder((h, w), 2.0, SIGMA)
    mirrored = xy[[0, 2, 1]].copy()  # keypoints 1 and 2 are a left/right pair
    mirrored[:, 0] = w - 1 - mirrored[:, 0]
    mx, my, _, _ = enc(mirrored, np.ones(3))
    flip_index = torch.tensor([[0, 2, 1]])
    back_x, back_y = flip_back_x(mx[None], flip_index, 2.0), flip_back_y(my[None], flip_index)
    decoded, _ = decode_simcc(back_x, back_y, 2.0, SIGMA)
    np.testing.assert_allclose(decoded[0].numpy(), xy, atol=0.01)


def test_flip_test_merges_the_mirrored_crop() -> None:
    torch.manual_seed(0)
    net = create("rtmpose-t", "coco17").eval()
    x = torch.rand(2, 3, 256, 192)
    classes = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        out = net(torch.cat([x, x.flip(-1)]))
        merged = net.merge_flip_test(out, classes)
    index = net.flip_index(classes)
    expected_x = (out[0][:2] + flip_back_x(out[0][2:], index, 2.0)) / 2
    torch.testing.assert_close(merged[0], expected_x)
    assert merged[1].shape == (2, 17, 512)


def test_kl_loss_is_zero_at_the_labels_and_ignores_unweighted_keypoints() -> None:
    enc = SimCCEncoder((256, 192), 2.0, SIGMA)
    lx, _, w, _ = enc(np.array([[50.0, 60.0], [100.0, 20.0]]), np.ones(2))
    assert float(kl_loss(lx[None], lx[None], w[None])) == pytest.approx(0.0, abs=1e-6)
    shifted = torch.roll(lx, 20, -1)[None]
    assert float(kl_loss(shifted, lx[None], w[None])) > 1e-3
    assert float(kl_loss(shifted, lx[None], torch.zeros(1, 2))) == 0.0


def test_published_sizes_and_head_shapes() -> None:
    published = {"rtmpose-t": 3.34, "rtmpose-s": 5.47, "rtmpose-m": 13.59, "rtmpose-l": 27.66}
    for name, millions in published.items():  # the published head has the gated attention
        with torch.device("meta"):
            net = create(name, "coco17", gau=True)
        params = sum(p.numel() for p in net.parameters()) / 1e6
        assert params == pytest.approx(millions, rel=0.02), name
    net = create("rtmpose-t", "coco17", input_size=(384, 512)).eval()
    sx, sy = net(torch.rand(1, 3, 384, 512))
    assert sx.shape == (1, 17, 1024) and sy.shape == (1, 17, 768)
    with pytest.raises(ValueError, match="multiples of 32"):
        create("rtmpose-t", "coco17", input_size=(250, 192))
