"""Instance crops: the exact inverse, and the pixel convention checked on drawn pixels."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.data.crops import boxes_to_regions, crop_matrices, from_crop, to_crop, warp_crops


def test_regions_keep_the_aspect_ratio_and_padding() -> None:
    centres, sizes = boxes_to_regions(np.array([[10, 20, 50, 100], [0, 0, 90, 30]]), 0.75, 1.25)
    np.testing.assert_allclose(centres, [[30, 60], [45, 15]])
    np.testing.assert_allclose(sizes, [[75, 100], [112.5, 150]])  # w / h = 0.75, x 1.25
    _, point = boxes_to_regions(np.array([[5.0, 5, 5, 5]]), 0.75, 1.0)
    np.testing.assert_allclose(point, [[1, 4 / 3]])  # a point still gets a region


def test_inverse_is_exact_with_rotation_and_flip() -> None:
    rng = np.random.default_rng(0)
    centres, sizes = rng.uniform(50, 400, (5, 2)), rng.uniform(20, 200, (5, 2))
    m = crop_matrices(centres, sizes, (256, 192), angles=rng.uniform(-40, 40, 5),
                      flips=np.array([True, False, True, False, False]))  # fmt: skip
    xy = rng.uniform(0, 500, (5, 17, 2))
    np.testing.assert_allclose(from_crop(to_crop(xy, m), m), xy, atol=1e-9)
    # the region's corners land on the centres of the crop's corner pixels (UDP)
    plain = crop_matrices(centres, sizes, (256, 192))
    corners = np.stack([centres - sizes / 2, centres + sizes / 2], 1)
    np.testing.assert_allclose(to_crop(corners, plain), [[[0, 0], [191, 255]]] * 5, atol=1e-9)


@pytest.mark.parametrize("pixel_centre", [0.5, 0.0])
def test_a_drawn_pixel_lands_where_the_matrix_says(pixel_centre: float) -> None:
    """A crop at scale 1: the one bright image pixel must be the one bright crop pixel, at
    the crop index that `to_crop` gives for its centre. A half-pixel error fails this."""
    image = np.zeros((100, 120, 3), np.uint8)
    image[37, 52] = 255  # row 37, column 52: centre (52 + c, 37 + c) with c = pixel_centre
    out_hw = (40, 30)
    sizes = np.array([[29.0, 39.0]])  # (W - 1, H - 1): scale exactly 1
    centres = np.array([[60.5, 40.5]]) + pixel_centre  # the pixel lands on crop pixel (6, 16)
    m = crop_matrices(centres, sizes, out_hw)
    crop = warp_crops(image, m, out_hw, pixel_centre=pixel_centre)[0]
    where = to_crop(np.array([[[52 + pixel_centre, 37 + pixel_centre]]]), m)[0, 0]
    row, col = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    np.testing.assert_allclose(where, [col, row], atol=1e-9)
    assert crop[row, col, 0] == 255 and crop[..., 0].sum() == 255
