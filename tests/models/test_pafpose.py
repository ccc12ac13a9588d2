"""pafpose's own parts: the limbs and grouping tree of a schema, the targets (and their mirror
image), and the grouping on hand-made maps: people crossing, a missing limb, a crowd region,
and the vectorised greedy matching against the plain greedy order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posekit.models import create
from posekit.models.base import Targets
from posekit.models.pafpose.grouping import GroupingSettings, greedy_match, group_people
from posekit.models.pafpose.limbs import schema_limbs
from posekit.models.pafpose.targets import draw_targets, flip_maps
from posekit.schema import KeypointSchema, get_schema
from posekit.utils.errors import UserError

COCO = get_schema("coco17")
STRIDE = 8
SIZE = (48, 64)  # cells: a 512 x 384 input


def _targets(people: list[np.ndarray], boxes: list[list[float]] | None = None) -> Targets:
    """A batch of one image from (K, 3) keypoint arrays in input pixels."""
    kp = torch.tensor(np.stack(people), dtype=torch.float32)[None]
    xy = kp[..., :2].clone()
    xy[kp[..., 2] <= 0] = float("nan")
    auto = torch.stack([xy[..., 0].nan_to_num(1e9).amin(-1), xy[..., 1].nan_to_num(1e9).amin(-1),
                        xy[..., 0].nan_to_num(-1e9).amax(-1),
                        xy[..., 1].nan_to_num(-1e9).amax(-1)], -1)  # fmt: skip
    box = torch.tensor(boxes, dtype=torch.float32)[None] if boxes is not None else auto
    m = len(people)
    return Targets(box, torch.zeros(1, m, dtype=torch.long), kp, torch.ones(1, m, dtype=torch.bool))


def _person(cx: float, cy: float, scale: float = 1.0, lean: float = 0.0) -> np.ndarray:
    """A COCO person (17, 3) standing at (cx, cy) hips, `scale` x 160 px tall, leaning."""
    base = np.array([[0, -70], [-4, -74], [4, -74], [-9, -72], [9, -72], [-18, -55], [18, -55],
                     [-24, -30], [24, -30], [-26, -8], [26, -8], [-10, 0], [10, 0], [-11, 38],
                     [11, 38], [-12, 78], [12, 78]], dtype=np.float64)  # fmt: skip
    base[:, 0] += lean * (78 - base[:, 1]) / 150
    kp = np.ones((17, 3)) * 2
    kp[:, :2] = base * scale + [cx, cy]
    return kp


def _maps(t: Targets, schema: KeypointSchema = COCO):
    limbs = schema_limbs(schema)
    d = draw_targets(t, limbs, schema.num_keypoints, SIZE, STRIDE, 1.5, 1.0)
    return d, limbs


def _match(found: torch.Tensor, truth: np.ndarray, tol: float) -> bool:
    xy = (found[:, :2] + 0.5) * STRIDE  # cells -> input pixels
    seen = found[:, 2] > 0
    return bool(np.all(np.abs(xy[seen].numpy() - truth[seen.numpy(), :2]) <= tol))


def test_the_coco_grouping_tree_spans_the_keypoints_and_mirrors() -> None:
    limbs = schema_limbs(COCO)
    assert limbs.count == 19 and len(limbs.tree) == 16  # 17 keypoints: a tree of 16 edges
    reached = {int(limbs.pairs[limbs.tree[0], limbs.tree_from[0]])}
    for e, end in zip(limbs.tree, limbs.tree_from, strict=True):
        assert int(limbs.pairs[e, end]) in reached  # each edge starts from a placed keypoint
        reached.add(int(limbs.pairs[e, 1 - end]))
    assert reached == set(range(17))
    flip = np.asarray(COCO.flip_idx)
    for e, (a, b) in enumerate(limbs.pairs):
        fa, fb = limbs.pairs[limbs.flip[e]]
        assert {fa, fb} == {flip[a], flip[b]}
        assert (limbs.flip_sign[e] == 1) == (fa == flip[a])


def test_schemas_the_grouping_cannot_use_are_refused() -> None:
    with pytest.raises(UserError, match="needs a skeleton"):
        schema_limbs(KeypointSchema.create("dots", ["a", "b", "c"]))
    with pytest.raises(UserError, match=r"joins every keypoint.*c, d"):
        schema_limbs(KeypointSchema.create("two", ["a", "b", "c", "d"], [("a", "b"), ("c", "d")]))
    with pytest.raises(UserError, match="one schema"):
        create("pafpose-s", [COCO, get_schema("arm")])


def _crosses(p: np.ndarray, q: np.ndarray, r: np.ndarray, s: np.ndarray) -> bool:
    """Whether segments pq and rs intersect."""

    def side(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float(np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])))

    return side(p, q, r) != side(p, q, s) and side(r, s, p) != side(r, s, q)


def test_two_people_crossing_are_grouped_apart() -> None:
    # two people 80 px apart leaning into each other: their arms and shoulders cross
    a, b = _person(220, 200, lean=30), _person(300, 200, scale=0.9, lean=-30)
    d, limbs = _maps(_targets([a, b]))
    crossings = sum(_crosses(a[i, :2], a[j, :2], b[u, :2], b[v, :2])
                    for i, j in limbs.pairs for u, v in limbs.pairs)  # fmt: skip
    assert crossings >= 5  # the scene is what the test says
    people = group_people(d.heat[0], d.paf[0], limbs, GroupingSettings())
    assert len(people.scores) == 2
    found = sorted(people.keypoints, key=lambda p: float(p[11, 0]))  # left hip x: a is left
    for kp, truth in zip(found, (a, b), strict=True):
        assert int((kp[:, 2] > 0).sum()) == 17
        assert _match(kp, truth, tol=0.5)  # sub-cell peaks


def test_a_missing_keypoint_leaves_the_rest_of_the_person_whole() -> None:
    chain = KeypointSchema.create("chain", list("abcde"), [("a", "b"), ("b", "c"), ("c", "d"),
                                                           ("d", "e")])  # fmt: skip
    kp = np.array([[100, 100, 2], [140, 120, 2], [180, 140, 2], [220, 160, 2], [260, 180, 2]],
                  dtype=np.float64)  # fmt: skip
    end_missing = kp.copy()
    end_missing[4] = 0
    other = kp + [0, 150, 0]
    d, limbs = _maps(_targets([end_missing, other]), chain)
    people = group_people(d.heat[0], d.paf[0], limbs, GroupingSettings())
    counts = sorted(int((p[:, 2] > 0).sum()) for p in people.keypoints)
    assert counts == [4, 5]
    four = next(p for p in people.keypoints if int((p[:, 2] > 0).sum()) == 4)
    assert four[4, 2] == 0 and _match(four, end_missing, tol=0.5)


def test_a_person_split_by_a_missing_keypoint_is_joined_again_by_another_edge() -> None:
    """A square skeleton a-b-c-d-a: its tree is a-b, b-c, c-d (or a rotation of it), so with
    c unlabelled the tree leaves d apart; the fourth edge joins it back (OpenPose's merge).
    Before: a, b and d were two people, and d alone was dropped."""
    square = KeypointSchema.create("square", list("abcd"),
                                   [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")])  # fmt: skip
    kp = np.array([[100, 100, 2], [180, 100, 2], [180, 180, 0], [100, 180, 2]], np.float64)
    d, limbs = _maps(_targets([kp]), square)
    people = group_people(d.heat[0], d.paf[0], limbs, GroupingSettings())
    assert len(people.scores) == 1
    assert (people.keypoints[0, :, 2] > 0).tolist() == [True, True, False, True]
    assert _match(people.keypoints[0], kp, tol=0.5)


def test_a_face_smaller_than_a_cell_keeps_its_limbs() -> None:
    """A 24 px person: its eyes, ears and nose lie within one 8 px cell. Each face limb still
    has a field (OpenPose's rule: the cells around a short segment), so the face is grouped
    with the body. Before: limbs shorter than a cell had no field and the face was lost."""
    small = _person(200, 200, scale=0.15)
    d, limbs = _maps(_targets([small]))
    eyes = next(i for i, (a, b) in enumerate(limbs.pairs) if {int(a), int(b)} == {1, 2})
    assert np.hypot(*(small[1, :2] - small[2, :2])) < STRIDE
    assert int((d.paf[0, 2 * eyes : 2 * eyes + 2].abs().sum(0) > 0).sum()) >= 1
    people = group_people(d.heat[0], d.paf[0], limbs, GroupingSettings())
    assert len(people.scores) == 1 and int((people.keypoints[0, :, 2] > 0).sum()) == 17


def test_a_crowd_region_is_not_supervised_and_costs_nothing() -> None:
    model = create("pafpose-s", COCO, imgsz=256)
    person = _person(100, 120, scale=0.8)
    nobody = np.zeros((17, 3))  # a box with no labelled keypoint: someone nobody annotated
    t = _targets([person, nobody], boxes=[[40, 40, 160, 200], [180, 40, 250, 200]])
    d, _ = _maps(t)
    mask = d.mask[0, 0]
    assert mask[5:25, 22:31].sum() == 0 and mask[5:25, 0:20].all()  # the box's cells, in cells
    out = model(torch.rand(1, 3, 256, 256))
    h, w = out.heatmaps[-1].shape[-2:]
    t.boxes, t.keypoints = t.boxes.clone(), t.keypoints.clone()
    loss, _ = model.loss(out, t)
    for maps in (*out.heatmaps, *out.pafs):  # anything at all predicted inside the crowd box
        maps[..., 8:23, 24:30] += 5.0
    again, _ = model.loss(out, t)
    assert (h, w) == (32, 32) and torch.isclose(loss, again)


def test_flipped_targets_are_the_targets_of_the_flipped_people() -> None:
    people = [_person(200.3, 190.6, lean=25), _person(330.2, 205.1, scale=0.8)]
    d, limbs = _maps(_targets(people))
    width = SIZE[1] * STRIDE
    flip = np.asarray(COCO.flip_idx)
    mirrored = []
    for p in people:
        m = p[flip].copy()
        m[:, 0] = width - m[:, 0]
        mirrored.append(m)
    dm, _ = _maps(_targets(mirrored))
    heat, paf = flip_maps(d.heat, d.paf, torch.as_tensor(flip), limbs)
    torch.testing.assert_close(heat, dm.heat, atol=1e-5, rtol=0)
    torch.testing.assert_close(paf, dm.paf, atol=1e-5, rtol=0)
    assert dm.paf.abs().sum() > 100  # the fields are not empty


def test_vectorised_greedy_matching_is_the_greedy_order() -> None:
    rng = np.random.default_rng(0)
    for trial in range(50):
        s = rng.random((rng.integers(1, 9), rng.integers(1, 9)))
        s[rng.random(s.shape) < 0.3] = -np.inf
        rows, cols = greedy_match(torch.tensor(s))
        want, used_r, used_c = [], set(), set()
        for flat in np.argsort(-s, axis=None, kind="stable"):
            r, c = np.unravel_index(flat, s.shape)
            if np.isfinite(s[r, c]) and r not in used_r and c not in used_c:
                want.append((int(r), int(c)))
                used_r.add(r)
                used_c.add(c)
        assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == sorted(want), trial


def test_decode_gives_people_in_input_pixels_with_boxes_around_them() -> None:
    model = create("pafpose-s", COCO, imgsz=512).eval()
    people = [_person(150, 200), _person(330, 210, scale=0.9)]
    d, _ = _maps(_targets(people))
    from posekit.models.pafpose.model import PafOutput

    dets = model.decode(PafOutput((d.heat,), (d.paf,)), conf=0.0, iou=0.7, max_det=10,
                        oks_nms=0.0)  # fmt: skip
    (det,) = dets
    assert len(det.scores) == 2 and det.keypoints.shape == (2, 17, 3)
    order = torch.argsort(det.keypoints[:, 0, 0])
    for i, truth in zip(order.tolist(), people, strict=True):
        np.testing.assert_allclose(det.keypoints[i, :, :2].numpy(), truth[:, :2], atol=0.5)
        x1, y1, x2, _ = det.boxes[i].tolist()
        assert x1 < truth[:, 0].min() and x2 > truth[:, 0].max() and y1 < truth[:, 1].min()
    one = model.decode(PafOutput((d.heat,), (d.paf,)), conf=0.0, iou=0.7, max_det=1, oks_nms=0.0)
    assert len(one[0].scores) == 1
