"""The skeleton annotator: every preset, both sides' colours, pixel-exact placement, any size."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.schema import PRESETS, get_schema
from posekit.viz import SIDE_COLORS, SkeletonAnnotator


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_draws_every_preset(name: str) -> None:
    schema = get_schema(name)
    k = schema.num_keypoints
    cols = int(np.ceil(np.sqrt(k)))
    grid = np.stack([(np.arange(k) % cols) * 40 + 30.5, (np.arange(k) // cols) * 40 + 30.5], 1)
    kp = np.concatenate([grid, np.full((k, 1), 2.0)], axis=1)[None]
    img = np.zeros((cols * 40 + 40, cols * 40 + 40, 3), dtype=np.uint8)
    out = SkeletonAnnotator(schema).annotate(img, kp)
    sides = schema.sides()
    for j in range(k):
        x, y = int(kp[0, j, 0]), int(kp[0, j, 1])
        assert tuple(out[y, x]) == SIDE_COLORS[sides[j]], (name, schema.keypoints[j])
    for a, b in schema.skeleton:
        mid = ((kp[0, a, :2] + kp[0, b, :2]) / 2).astype(int)
        assert out[mid[1], mid[0]].any(), f"edge {a}-{b} of {name} not drawn"


def test_keypoint_is_centred_on_its_pixel() -> None:
    schema = get_schema("arm")
    kp = np.zeros((1, 6, 3))
    kp[0, 0] = [10.5, 20.5, 2]  # the centre of pixel (10, 20)
    out = SkeletonAnnotator(schema).annotate(np.zeros((41, 41, 3), np.uint8), kp)
    gray = out.sum(axis=2).astype(int)
    assert gray[20, 9] == gray[20, 11] and gray[19, 10] == gray[21, 10]
    assert tuple(out[20, 10]) == SIDE_COLORS["center"]


@pytest.mark.parametrize(("h", "w"), [(48, 64), (2160, 3840)])
def test_sizes_scale_with_the_image(h: int, w: int) -> None:
    ann = SkeletonAnnotator(get_schema("coco17"))
    thick, radius, _ = ann.sizes(np.zeros((h, w, 3), np.uint8))
    assert 1 <= thick <= max(2, max(h, w) / 100) and 1 <= radius <= max(2, max(h, w) / 50)
    kp = np.zeros((1, 17, 3))
    kp[0, :, 0] = np.linspace(0.1, 0.9, 17) * w
    kp[0, :, 1] = np.linspace(0.1, 0.9, 17) * h
    kp[0, :, 2] = 2
    out = ann.annotate(
        np.zeros((h, w, 3), np.uint8),
        kp,
        boxes=np.array([[1, 1, w - 2, h - 2]]),
        labels=["person 0.93"],
    )
    assert out.shape == (h, w, 3) and out.any()
    plain = ann.annotate(np.zeros((h, w, 3), np.uint8), kp, boxes=np.array([[1, 1, w - 2, h - 2]]))
    # thumbnails get no text (it would cover the person); large images do
    assert np.array_equal(out, plain) == (max(h, w) < 160)


def test_hidden_and_occluded_keypoints() -> None:
    schema = get_schema("arm")
    kp = np.zeros((1, 6, 3))
    kp[0, :, :2] = [[30, 30], [100, 30], [170, 30], [30, 130], [100, 130], [170, 130]]
    kp[0, :, 2] = [2, 1, 0, 2, 2, 2]
    ann = SkeletonAnnotator(schema, line_scale=8)  # radius 8 px on this 200 px image
    out = ann.annotate(np.zeros((200, 200, 3), np.uint8), kp)
    assert not out[25:36, 165:176].any()  # v = 0 is not drawn
    # v = 1 is a hollow ring (its edge to the base runs through it along y = 30)
    assert not out[25, 100].any() and out[20:24, 100].any()
    assert tuple(out[30, 30]) == SIDE_COLORS["center"]  # v = 2 is a filled dot
