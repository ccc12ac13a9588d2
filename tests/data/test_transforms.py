"""Geometry of augmentation and letterbox, exact to the pixel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posekit.data.transforms import (
    Letterbox,
    hflip_matrix,
    random_affine,
    transform_instances,
    transform_points,
    warp,
)
from posekit.ops.instances import Instances


def _markers(size: int, points: np.ndarray) -> np.ndarray:
    """A gray image with a distinct 3x3 colour square centred on each point (pixel centres)."""
    img = np.full((size, size, 3), 40, np.uint8)
    for j, (x, y) in enumerate(points):
        c = (50 + 40 * j, 255 - 30 * j, 120 + 20 * j)
        ix, iy = int(x), int(y)
        img[iy - 1 : iy + 2, ix - 1 : ix + 2] = c
    return img


@pytest.mark.parametrize("canvas", [160, (192, 128)])
@pytest.mark.parametrize("seed", range(6))
def test_flipped_and_rotated_keypoints_land_on_the_drawn_joints(
    seed: int, canvas: int | tuple[int, int]
) -> None:
    """On a square canvas and on a rectangular one (rect training)."""
    rng = np.random.default_rng(seed)
    size = 160
    pts = np.array([[40.5, 50.5], [100.5, 60.5], [80.5, 110.5], [60.5, 90.5]])  # pixel centres
    img = _markers(size, pts)
    kp = np.c_[pts, np.full(4, 2.0)][None]
    inst = Instances(np.array([[30.0, 40, 110, 120]]), kp, np.array([0]))
    m = random_affine(rng, canvas, scale=0.3, degrees=30, translate=0.05)
    m = hflip_matrix(canvas) @ m
    flip_tables = np.array([[1, 0, 2, 3]])  # points 0 and 1 are a left/right pair
    out = warp(img, m, canvas)
    assert out.shape[:2] == (160, 160) if canvas == 160 else (128, 192)
    moved = transform_instances(inst, m, canvas, flip_tables=flip_tables)
    for j in range(4):
        src = flip_tables[0, j]  # keypoint j now holds what was keypoint src
        colour = img[int(pts[src, 1]), int(pts[src, 0])].astype(int)
        x, y = moved.keypoints[0, j, :2]
        dist = np.abs(out.astype(int) - colour).sum(axis=2)
        ys, xs = np.nonzero(dist < 40)
        assert len(xs), f"marker {src} vanished"
        centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
        assert np.abs(centre - (x, y)).max() < 1.0, (j, centre, (x, y))


def test_keypoints_pushed_out_become_unlabelled_and_boxes_leave() -> None:
    inst = Instances(
        np.array([[0.0, 0, 20, 20], [50, 50, 90, 90]]),
        np.array([[[5, 5, 2], [15, 15, 1]], [[60, 60, 2], [89, 89, 2]]], float),
        np.array([0, 0]),
    )
    shift = np.array([[1.0, 0, -30], [0, 1, 0], [0, 0, 1]])  # 30 px to the left
    out = transform_instances(inst, shift, 100)
    assert len(out) == 1  # the first instance left the frame
    np.testing.assert_allclose(out.keypoints[0], [[30, 60, 2], [59, 89, 2]])
    out = transform_instances(inst, np.array([[1.0, 0, 20], [0, 1, 0], [0, 0, 1]]), 100)
    assert out.keypoints[1, 1].tolist() == [0, 0, 0]  # pushed past the right edge


@pytest.mark.parametrize(
    ("w", "h", "size"),
    [(641, 479, 320), (37, 101, 64), (999, 999, 640), (1, 300, 96), (3000, 17, 256)],
)
def test_letterbox_round_trip_is_exact(w: int, h: int, size: int) -> None:
    lb = Letterbox.fit(w, h, size)
    pts = np.array([[0.0, 0.0], [w, h], [w / 3, h / 7], [0.5, h - 0.5]])
    np.testing.assert_allclose(lb.to_original(lb.to_input(pts)), pts, atol=1e-9)
    img = np.zeros((h, w, 3), np.uint8)
    out = lb.apply(img)
    assert out.shape == (size, size, 3)
    # the image's corners map onto the edges of the resized area inside the padding
    np.testing.assert_allclose(
        lb.to_input(np.array([[0.0, 0.0], [w, h]])),
        [[lb.pad_x, lb.pad_y], [lb.pad_x + lb.new_w, lb.pad_y + lb.new_h]],
    )


def test_letterbox_pixel_centres_follow_resize() -> None:
    """A one-pixel dot at a pixel centre stays centred on the mapped point after resize."""
    img = np.zeros((100, 200, 3), np.uint8)
    cv2.circle(img, (120, 40), 6, (255, 255, 255), -1)  # centre of pixel (120, 40)
    lb = Letterbox.fit(200, 100, 100)
    out = lb.apply(img)
    ys, xs = np.nonzero(out[..., 0] > 127)
    centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    np.testing.assert_allclose(centre, lb.to_input(np.array([120.5, 40.5])), atol=0.3)


def test_rect_training_samples_share_one_rectangle_and_mixed_sizes_stay_square(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    from posekit.data.formats import load_dataset
    from posekit.data.synth import SynthConfig, generate
    from posekit.models.samples import AugmentConfig, KeypointSamples, common_stride

    root = generate(SynthConfig("person", images=3, imgsz=160, seed=0), tmp_path / "d", val=0.0)
    ds = load_dataset(root, "train")
    w, h = ds.images[0].width, ds.images[0].height
    samples = KeypointSamples(ds, 160, AugmentConfig(), rect=True)
    expect = Letterbox.fit(w, h, 160, 32).shape
    assert samples.canvas == (expect[1], expect[0]) and expect != (160, 160)
    for i in range(len(samples)):
        img, inst, _, _ = samples[i]
        assert tuple(img.shape[1:]) == expect
        kp = inst.keypoints[inst.keypoints[..., 2] > 0]
        assert np.all((kp[:, 0] < expect[1]) & (kp[:, 1] < expect[0]))
    assert common_stride([(640, 480), (480, 640)], 320) is None
    assert KeypointSamples(ds, 160, AugmentConfig()).canvas == (160, 160)


@pytest.mark.parametrize("seed", range(4))
def test_mosaic_places_each_image_in_its_quadrant_with_its_keypoints(seed: int) -> None:
    from posekit.data.transforms import mosaic

    rng = np.random.default_rng(seed)
    shapes = [(120, 160), (200, 100), (160, 160), (60, 90)]  # (h, w): letterboxed differently
    images, parts, points = [], [], []
    for q, (h, w) in enumerate(shapes):
        img = np.full((h, w, 3), 40, np.uint8)
        pts = np.array([[0.25 * w, 0.3 * h], [0.7 * w, 0.6 * h]]).round() + 0.5
        for j, (x, y) in enumerate(pts):  # distinct 5x5 colours; images shrink to 0.64
            img[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3] = (60 * q + 30, 200 - 90 * j, 90)
        images.append(img)
        points.append(pts)
        kp = np.c_[pts, np.full(2, 2.0)][None]
        parts.append(Instances(np.array([[0.0, 0, w, h]]), kp, np.array([q])))
    big, inst, mats = mosaic(images, parts, (192, 128), rng)
    assert big.shape == (256, 384, 3)
    for q in range(4):  # keypoints follow their image's matrix and land on its markers
        rows = np.nonzero(inst.classes == q)[0]
        if not len(rows):
            continue  # the whole tile fell outside the mosaic
        for j in range(2):
            x, y, v = inst.keypoints[rows[0], j]
            expected = transform_points(points[q][j], mats[q])
            if v == 0:  # cut by the mosaic border
                assert not (0 <= expected[0] < 384 and 0 <= expected[1] < 256)
                continue
            np.testing.assert_allclose((x, y), expected)
            colour = images[q][int(points[q][j][1]), int(points[q][j][0])].astype(int)
            ys, xs = np.nonzero(np.abs(big.astype(int) - colour).sum(axis=2) < 12)
            assert len(xs), (q, j)
            centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
            assert np.abs(centre - (x, y)).max() < 1.0, (q, j, centre, (x, y))
    # the four tiles meet at one centre and do not overlap: tile 0 ends where tile 1 begins
    assert mats[0][0, 2] + shapes[0][1] * mats[0][0, 0] == pytest.approx(mats[1][0, 2])
    assert mats[0][1, 2] + shapes[0][0] * mats[0][1, 1] == pytest.approx(mats[2][1, 2])
