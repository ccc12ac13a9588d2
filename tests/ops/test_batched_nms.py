"""Batched post-processing equals the per-image reference: greedy NMS on boxes and on keypoint
similarity over a whole batch (in blocks, with the early stop at max_keep), and rtpose's
decoder against the per-image pipeline it replaced."""

from __future__ import annotations

import pytest
import torch

from posekit.models.rtpose.decode import postprocess, snap_keypoints
from posekit.models.rtpose.model import RTPoseOutput, anchors_for
from posekit.ops import batched_greedy_keep, batched_keypoint_nms, batched_nms, keypoint_nms, nms
from posekit.ops.instances import Instances


def random_boxes(g: torch.Generator, b: int, n: int, size: float = 200.0) -> torch.Tensor:
    xy = torch.rand(b, n, 2, generator=g) * size
    wh = torch.rand(b, n, 2, generator=g) * 60 + 4
    return torch.cat([xy, xy + wh], -1)


@pytest.mark.parametrize("block", [64, 7])
@pytest.mark.parametrize("max_keep", [None, 5])
def test_batched_nms_equals_nms_on_each_list(block: int, max_keep: int | None) -> None:
    g = torch.Generator().manual_seed(0)
    b, n = 4, 60
    boxes = random_boxes(g, b, n)
    scores = torch.rand(b, n, generator=g)
    classes = torch.randint(0, 2, (b, n), generator=g)
    counts = [60, 31, 0, 12]  # lists of different lengths, padded
    valid = torch.arange(n)[None] < torch.tensor(counts)[:, None]
    scores = torch.where(valid, scores, -1.0)
    order = scores.argsort(dim=1, descending=True, stable=True)
    boxes, classes = boxes.gather(1, order[..., None].expand(-1, -1, 4)), classes.gather(1, order)
    valid, scores = valid.gather(1, order), scores.gather(1, order)

    def suppresses(rows: slice, cols: slice) -> torch.Tensor:
        from posekit.ops import box_iou

        over = box_iou(boxes[:, rows, None], boxes[:, None, cols]) > 0.3
        return over & (classes[:, rows, None] == classes[:, None, cols])

    keep = batched_greedy_keep(suppresses, valid, max_keep, block=block)
    assert torch.equal(keep, batched_nms(boxes, valid, 0.3, classes, max_keep)) or block != 64
    for i, c in enumerate(counts):
        want = nms(boxes[i, :c], scores[i, :c], 0.3, classes[i, :c])
        want = want[:max_keep] if max_keep else want
        got = keep[i].nonzero().squeeze(1)
        assert sorted(got.tolist()) == sorted(want.tolist()), i
        assert int(keep[i].sum()) > (3 if c else -1)


def test_batched_keypoint_nms_equals_keypoint_nms_on_each_list() -> None:
    g = torch.Generator().manual_seed(1)
    b, n, k = 3, 40, 5
    centres = torch.rand(b, n, 1, 2, generator=g) * 30
    kp = centres + torch.randn(b, n, k, 2, generator=g) * 2
    areas = torch.rand(b, n, generator=g) * 400 + 100
    classes = torch.randint(0, 2, (b, n), generator=g)
    sig = torch.tensor([[0.05, 0.05, 0.08, 0.08, 0.1], [0.07, 0.07, 0.0, 0.0, 0.0]])
    sigmas = sig[classes]
    valid = torch.ones(b, n, dtype=torch.bool)
    valid[2, 30:] = False
    keep = batched_keypoint_nms(kp, areas, sigmas, valid, 0.5, classes)
    for i in range(b):
        m = int(valid[i].sum())
        scores = torch.linspace(1, 0, m)  # the lists are ranked
        want = keypoint_nms(kp[i, :m], scores, areas[i, :m], sigmas[i, :m], 0.5, classes[i, :m])
        assert sorted(keep[i].nonzero().squeeze(1).tolist()) == sorted(want.tolist())
        assert 0 < len(want) < m


def reference_postprocess(out: RTPoseOutput, conf: float, iou: float, max_det: int,
                          sigmas: torch.Tensor, oks_nms: float) -> list[Instances]:  # fmt: skip
    """The per-image pipeline that the batched decoder replaced (one image at a time)."""
    scores_all = out.cls_logits.sigmoid()
    best, cls = scores_all.max(-1)
    kconf = out.kpt_logits.sigmoid()
    results = []
    for b in range(best.shape[0]):
        idx = (best[b] >= conf).nonzero().squeeze(1)
        if len(idx) > 3000:
            idx = idx[best[b, idx].topk(3000).indices]
        keep = nms(out.boxes[b, idx], best[b, idx], iou, cls[b, idx])[:max_det]
        a = idx[keep]
        xy = out.keypoints[b, a]
        if len(a):
            xy = snap_keypoints(xy, out.boxes[b, a], out.heatmap[b].sigmoid(),
                                out.heatmap_offset[b], out.heatmap_stride)  # fmt: skip
        if len(a) > 1:
            box = out.boxes[b, a]
            area = (box[:, 2:] - box[:, :2]).clamp(min=0).prod(-1)
            k2 = keypoint_nms(xy, best[b, a], area, sigmas[cls[b, a]], oks_nms, cls[b, a])
            a, xy = a[k2], xy[k2]
        kp = torch.cat([xy, kconf[b, a][..., None]], -1)
        results.append(
            Instances(boxes=out.boxes[b, a], keypoints=kp, classes=cls[b, a], scores=best[b, a])
        )
    return results


def test_batched_decoder_equals_the_per_image_pipeline() -> None:
    """Many overlapping detections of two classes in images of a batch, heatmaps with peaks:
    every detection, box, score, class and snapped keypoint is the same."""
    g = torch.Generator().manual_seed(2)
    bsz, k, h, w = 3, 4, 96, 128
    anchors, strides = anchors_for([(h // s, w // s) for s in (8, 16, 32)], torch.device("cpu"))
    a = len(anchors)
    xy = anchors[None].expand(bsz, -1, -1)
    wh = torch.rand(bsz, a, 2, generator=g) * 40 + 8
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], -1)
    out = RTPoseOutput(
        cls_logits=torch.randn(bsz, a, 2, generator=g) * 2,
        boxes=boxes,
        keypoints=xy[:, :, None] + torch.randn(bsz, a, k, 2, generator=g) * 10,
        kpt_logits=torch.randn(bsz, a, k, generator=g),
        anchors=anchors,
        strides=strides,
        heatmap=torch.randn(bsz, k, h // 8, w // 8, generator=g) * 3,
        heatmap_offset=torch.rand(bsz, k, 2, h // 8, w // 8, generator=g),
    )
    sigmas = torch.tensor([[0.05, 0.06, 0.07, 0.08], [0.1, 0.1, 0.0, 0.0]])
    for conf, max_det in ((0.25, 300), (0.05, 20), (0.99, 300)):
        got = postprocess(out, conf=conf, iou=0.5, max_det=max_det, sigmas=sigmas, oks_nms=0.6)
        want = reference_postprocess(out, conf, 0.5, max_det, sigmas, 0.6)
        assert len(got) == bsz
        for d, r in zip(got, want, strict=True):
            assert len(r.scores) == len(d.scores)
            torch.testing.assert_close(d.scores, r.scores, rtol=0, atol=0)
            torch.testing.assert_close(d.boxes, r.boxes, rtol=0, atol=0)
            torch.testing.assert_close(d.classes, r.classes, rtol=0, atol=0)
            torch.testing.assert_close(d.keypoints[..., :2], r.keypoints[..., :2], rtol=0, atol=0)
            # confidences: a sigmoid of the gathered logits (SIMD rounding differs by 1 ulp)
            torch.testing.assert_close(d.keypoints[..., 2], r.keypoints[..., 2], rtol=0, atol=1e-6)
        if conf == 0.05:
            assert all(10 < len(d.scores) <= max_det for d in got)
        if conf == 0.25:
            assert sum(len(d.scores) for d in got) > 30
