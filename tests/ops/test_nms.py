"""Greedy NMS on boxes and on keypoint similarity, against plain one-at-a-time references."""

from __future__ import annotations

import math

import torch

from posekit.models.rtpose import RTPoseOutput
from posekit.models.rtpose.decode import postprocess
from posekit.ops import keypoint_nms, nms, pairwise_iou


def greedy_reference(order: list[int], suppresses: list[list[bool]]) -> list[int]:
    """Textbook greedy suppression: walk by score, keep what no kept item suppresses."""
    kept: list[int] = []
    for j in order:
        if not any(suppresses[i][j] for i in kept):
            kept.append(j)
    return kept


def random_boxes(g: torch.Generator, n: int) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * 60
    wh = torch.rand(n, 2, generator=g) * 40 + 5
    return torch.cat([xy, xy + wh], 1)


def test_box_nms_matches_the_one_at_a_time_greedy() -> None:
    g = torch.Generator().manual_seed(0)
    dropped = 0
    for trial in range(40):
        n = 1 + trial * 3
        boxes, scores = random_boxes(g, n), torch.rand(n, generator=g)
        classes = torch.randint(0, 2, (n,), generator=g)
        iou = pairwise_iou(boxes, boxes)
        order = scores.argsort(descending=True, stable=True).tolist()
        over = [[bool(iou[i, j] > 0.5 and classes[i] == classes[j]) for j in range(n)]
                for i in range(n)]  # fmt: skip
        want = greedy_reference(order, over)
        assert nms(boxes, scores, 0.5, classes).tolist() == want
        dropped += n - len(want)
    assert dropped > 100  # the comparison exercised suppression, and chains of it


def hrnet_oks(
    a: torch.Tensor, b: torch.Tensor, area_a: float, area_b: float, sig: list[float]
) -> float:
    """OKS between two detections as HRNet's oks_nms computes it (mean area of the pair)."""
    used = [k for k in range(len(sig)) if sig[k] > 0]
    s = (area_a + area_b) / 2
    terms = [math.exp(-float(((a[k] - b[k]) ** 2).sum()) / ((2 * sig[k]) ** 2 * 2 * s))
             for k in used]  # fmt: skip
    return sum(terms) / len(terms)


def test_keypoint_nms_matches_the_one_at_a_time_greedy() -> None:
    g = torch.Generator().manual_seed(1)
    sig = [0.026, 0.079, 0.107, 0.0]  # the last slot is unused by this class
    dropped = 0
    for trial in range(30):
        n = 2 + trial
        base = torch.rand(4, 4, 2, generator=g) * 50  # 4 distinct poses ...
        kp = base[torch.randint(0, 4, (n,), generator=g)]  # ... repeated with jitter
        kp = kp + torch.randn(n, 4, 2, generator=g) * (trial % 4)
        kp[:, 3] = torch.rand(n, 2, generator=g) * 1000  # unused slot: must not matter
        scores, areas = torch.rand(n, generator=g), torch.rand(n, generator=g) * 900 + 100
        classes = torch.randint(0, 2, (n,), generator=g)
        order = scores.argsort(descending=True, stable=True).tolist()
        over = [
            [bool(classes[i] == classes[j])
             and hrnet_oks(kp[i], kp[j], float(areas[i]), float(areas[j]), sig) > 0.9
             for j in range(n)]
            for i in range(n)
        ]  # fmt: skip
        want = greedy_reference(order, over)
        got = keypoint_nms(kp, scores, areas, torch.tensor(sig), 0.9, classes)
        assert got.tolist() == want
        dropped += n - len(want)
    assert dropped > 50


def test_postprocess_drops_a_duplicate_whose_box_differs_but_keypoints_coincide() -> None:
    # two locations find the same animal: one box covers its tail, one does not (IoU 0.5,
    # under the box NMS threshold), and both regress the same keypoints
    anchors = torch.tensor([[20.0, 20.0], [28.0, 20.0], [300.0, 200.0]])
    boxes = torch.tensor([[[0.0, 0.0, 100.0, 50.0], [0.0, 0.0, 50.0, 50.0], [280, 180, 320, 220]]])
    kp = torch.tensor([[10.0, 10.0], [30.0, 12.0], [40.0, 30.0]])
    far = kp + 270
    out = RTPoseOutput(
        cls_logits=torch.tensor([[[3.0], [2.0], [1.0]]]),
        boxes=boxes,
        keypoints=torch.stack([kp, kp, far])[None],
        kpt_logits=torch.zeros(1, 3, 3),
        anchors=anchors,
        strides=torch.full((3,), 8.0),
    )
    sigmas = torch.tensor([[0.05, 0.05, 0.05]])
    settings = {"conf": 0.1, "iou": 0.65, "max_det": 300}
    kept = postprocess(out, **settings, oks_nms=0.9, sigmas=sigmas)[0]
    assert kept.scores.tolist() == torch.sigmoid(torch.tensor([3.0, 1.0])).tolist()
    assert torch.equal(kept.boxes, boxes[0, [0, 2]])
    assert len(postprocess(out, **settings, sigmas=sigmas, oks_nms=1.0)[0].scores) == 3
    # without sigmas: box NMS only
    assert len(postprocess(out, **settings, oks_nms=0.9)[0].scores) == 3
