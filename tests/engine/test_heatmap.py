"""Keypoint heatmaps: dense targets on the stride-8 grid and snapping regressed keypoints."""

from __future__ import annotations

import torch

from posekit.models.base import Targets
from posekit.models.rtpose.decode import snap_keypoints
from posekit.models.rtpose.loss import heatmap_focal_loss, heatmap_targets

STRIDE = 8
GRID = (16, 20)  # (H, W) cells: a 160 x 128 input


def _targets(points: list[list[tuple[float, float, int]]]) -> Targets:
    """One image with one instance per list of (x, y, v) keypoints."""
    kp = torch.tensor([points], dtype=torch.float32)  # (1, M, K, 3)
    m = kp.shape[1]
    boxes = torch.tensor([[[0.0, 0.0, 160.0, 128.0]] * m])
    return Targets(boxes, torch.zeros(1, m, dtype=torch.long), kp, torch.ones(1, m, dtype=bool))


def _decoded(ht, k: int) -> dict[tuple[int, int], tuple[float, float]]:  # type: ignore[no-untyped-def]
    """Keypoint k's supervised cells (row, column) -> the position their offset decodes to."""
    out = {}
    for (_, kk, row, col), (ox, oy) in zip(ht.cells.tolist(), ht.offset.tolist(), strict=True):
        if kk == k:
            out[row, col] = ((col + ox + 0.5) * STRIDE, (row + oy + 0.5) * STRIDE)
    return out


def _dense_offsets(ht, grid: tuple[int, int]) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """(K, 2, H, W) offsets with the supervised cells filled in, as a model would predict."""
    k = ht.heat.shape[1]
    dense = torch.zeros(k, 2, *grid)
    _, kk, yy, xx = ht.cells.unbind(-1)
    dense[kk, :, yy, xx] = ht.offset
    return dense


def test_peak_is_the_cell_nearest_the_keypoint_and_offsets_decode_to_it_exactly() -> None:
    # x = 37.3 px is 37.3 / 8 - 0.5 = 4.16 cells (cell centres at 4 px, 12 px, ...)
    t = _targets([[(37.3, 50.9, 2), (4.0, 4.0, 1), (90.0, 60.0, 0)]])
    ht = heatmap_targets(t, torch.ones(1, 3, dtype=bool), GRID, STRIDE)
    assert ht.heat.shape == (1, 3, *GRID)
    assert ht.heat[0, 0, 6, 4] == 1 and int((ht.heat[0, 0] == 1).sum()) == 1
    assert abs(float(ht.heat[0, 0, 6, 5]) - 0.6065) < 1e-4  # exp(-1/2): sigma one cell
    assert ht.heat[0, 1, 0, 0] == 1  # a keypoint on the first cell centre, v = 1 counts
    assert ht.heat[0, 2].max() == 0 and not _decoded(ht, 2)  # v = 0: nothing
    # the 2 x 2 cells around the keypoint are supervised, so a neighbouring peak still
    # decodes exactly to it
    cells = _decoded(ht, 0)
    assert set(cells) == {(5, 4), (5, 5), (6, 4), (6, 5)}
    for x, y in cells.values():
        assert abs(x - 37.3) < 1e-4 and abs(y - 50.9) < 1e-4


def test_each_cell_belongs_to_the_nearest_instance() -> None:
    t = _targets([[(20.0, 20.0, 2)], [(30.0, 20.0, 2)]])
    ht = heatmap_targets(t, torch.ones(1, 1, dtype=bool), GRID, STRIDE)
    assert ht.heat[0, 0, 2, 2] == 1 and ht.heat[0, 0, 2, 3] == 1  # both peaks drawn
    cells = _decoded(ht, 0)  # x = 20 is 2.0 cells, x = 30 is 3.25 cells
    assert cells[2, 2][0] == 20.0 and cells[2, 3][0] == 30.0 and cells[2, 4][0] == 30.0


def test_focal_loss_is_lower_for_the_right_heatmap() -> None:
    t = _targets([[(37.3, 50.9, 2), (100.0, 20.0, 2)]])
    ht = heatmap_targets(t, torch.ones(1, 2, dtype=bool), GRID, STRIDE)
    good = torch.logit(ht.heat.clamp(0.01, 0.99))
    bad = torch.logit(ht.heat.flip(-1).clamp(0.01, 0.99))
    assert heatmap_focal_loss(good, ht.heat) < 0.2 * heatmap_focal_loss(bad, ht.heat)


def test_keypoints_snap_to_their_own_peak_within_the_window() -> None:
    truth = [(37.3, 50.9, 2), (100.2, 20.7, 2), (60.0, 100.0, 2)]
    t = _targets([truth])
    ht = heatmap_targets(t, torch.ones(1, 3, dtype=bool), GRID, STRIDE)
    box = torch.tensor([[20.0, 10.0, 120.0, 110.0]])  # 100 px: a 3-cell window
    regressed = torch.tensor([[[45.0, 43.0], [95.0, 28.0], [10.0, 10.0]]])
    offset = _dense_offsets(ht, GRID)
    out = snap_keypoints(regressed, box, ht.heat[0], offset, STRIDE)
    torch.testing.assert_close(out[0, :2], torch.tensor([[37.3, 50.9], [100.2, 20.7]]))
    torch.testing.assert_close(out[0, 2], regressed[0, 2])  # its peak is out of reach: kept
    # a small instance searches one cell only, so the same offset no longer reaches
    small = torch.tensor([[40.0, 40.0, 56.0, 56.0]])
    out = snap_keypoints(regressed[:, :1] + 8, small, ht.heat[0, :1], offset[:1], STRIDE)
    torch.testing.assert_close(out, regressed[:, :1] + 8)


def test_loss_under_bfloat16_autocast_matches_full_precision() -> None:
    """Training on a CPU with native bfloat16 runs the network under autocast: the loss must
    accept bfloat16 outputs and agree with the float32 loss."""
    from posekit.models import create
    from posekit.models.rtpose.loss import RTPoseLoss

    torch.manual_seed(0)
    model = create("rtpose-n", "coco17", width=0.5)
    x = torch.rand(2, 3, 128, 160)
    pts = [(40.0 + 3 * i, 30.0 + 4 * i, 2) for i in range(17)]
    t = _targets([pts])
    t = Targets(*(v.expand(2, *v.shape[1:]) for v in (t.boxes, t.classes, t.keypoints, t.mask)))
    loss_fn = RTPoseLoss(torch.full((1, 17), 0.05), torch.ones(1, 17, dtype=torch.bool))
    full, parts = loss_fn(model(x), t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.heatmap.dtype == torch.bfloat16
    mixed, mixed_parts = loss_fn(out, t)
    assert mixed.dtype == torch.float32 and torch.isfinite(mixed)
    diff = abs(float(mixed.detach()) - float(full.detach()))
    assert diff < 0.05 * float(full.detach()), (parts, mixed_parts)
    mixed.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
