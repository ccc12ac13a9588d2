"""PCK, EPE, NME and per-keypoint AP on cases whose answers are known."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cocoproblems import pycocotools_stats, random_problem
from posekit.data import Annotation, Category, ImageInfo, KeypointDataset
from posekit.eval import EvalConfig, GroundTruth, Predictions, evaluate, per_keypoint_ap
from posekit.schema import KeypointSchema, get_schema


def _dataset(kps: list[np.ndarray], schema: KeypointSchema, boxes=None, extra=None):
    images = [ImageInfo(1, "a.jpg", 400, 400)]
    anns = []
    for i, kp in enumerate(kps):
        bb = np.array(boxes[i] if boxes else [0, 0, 100, 50], float)
        anns.append(
            Annotation(i + 1, 1, 1, kp.astype(float), bb, 5000.0, extra=(extra[i] if extra else {}))
        )
    return KeypointDataset(images, anns, [Category(1, schema.name, schema)])


def _result(kp: np.ndarray, score: float = 0.9) -> dict:
    return {"image_id": 1, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": score}


def test_pck_and_epe_on_known_distances() -> None:
    schema = KeypointSchema.create("thing", ["a", "b", "c", "d"])
    gt = np.array([[10, 10, 2], [50, 10, 2], [10, 40, 1], [90, 40, 0]], float)
    pred = gt.copy()
    pred[:, 2] = [0.9, 0.9, 0.3, 0.9]
    pred[0, 0] += 3  # 3 px: inside 0.05 * 100 = 5 px
    pred[1, 1] += 6  # 6 px: outside
    pred[2, :2] += [3, 4]  # 5 px: on the boundary counts as correct
    pred[3, :2] += 50  # unlabelled: ignored
    m = evaluate(_dataset([gt], schema), [_result(pred)], EvalConfig(pcutoff=0.5))
    assert m.pck == pytest.approx(2 / 3)
    assert m.per_keypoint_pck[:3] == pytest.approx([1.0, 0.0, 1.0])
    assert np.isnan(m.per_keypoint_pck[3])
    assert m.epe == pytest.approx((3 + 6 + 5) / 3)
    assert m.epe_pcutoff == pytest.approx((3 + 6) / 2)  # keypoint c has confidence 0.3
    assert m.counts["matched"] == 1 and m.counts["labelled_keypoints"] == 3


def test_unmatched_ground_truth_counts_as_missed() -> None:
    schema = KeypointSchema.create("thing", ["a", "b"])
    g1 = np.array([[10, 10, 2], [20, 10, 2]], float)
    g2 = np.array([[200, 200, 2], [220, 200, 2]], float)
    ds = _dataset([g1, g2], schema, boxes=[[0, 0, 30, 20], [190, 190, 40, 20]])
    m = evaluate(ds, [_result(np.c_[g1[:, :2], [1, 1]])])
    assert m.pck == pytest.approx(0.5)  # g2's two keypoints are misses
    assert m.epe == pytest.approx(0.0)  # distances only where a prediction exists
    assert m.counts["unmatched"] == 1
    worst = m.instances()[0]
    assert worst["matched"] is False and worst["oks"] == 0.0


def test_higher_score_detection_is_paired_first() -> None:
    schema = KeypointSchema.create("thing", ["a", "b"])
    g = np.array([[10, 10, 2], [20, 10, 2]], float)
    close, far = g.copy(), g.copy()
    far[:, 0] += 4
    close[:, 2] = far[:, 2] = 1
    m = evaluate(_dataset([g], schema), [_result(far, 0.9), _result(close, 0.5)])
    assert m.epe == pytest.approx(4.0)  # the 0.9 detection, not the closer one


def test_pckh_torso_and_nme() -> None:
    coco = get_schema("coco17")
    gt = np.zeros((17, 3))
    gt[:, 0], gt[:, 1], gt[:, 2] = np.arange(17) * 10 + 10, 100, 2
    gt[5, :2], gt[12, :2] = [100, 100], [130, 140]  # left shoulder, right hip: torso 50 px
    pred = gt.copy()
    pred[:, 2] = 1
    pred[:8, 0] += 9  # 8 keypoints 9 px off, 9 exact
    ds = _dataset([gt], coco, boxes=[[0, 50, 200, 100]], extra=[{"head_size": 20.0}])
    m = evaluate(ds, [_result(pred)])
    assert m.pckh == pytest.approx(1.0)  # 0.5 x head 20 px = 10 px: 9 px off is inside
    assert m.pck_torso == pytest.approx(1.0)  # 0.2 x torso 50 px = 10 px
    tight = evaluate(ds, [_result(pred)], EvalConfig(pckh_alpha=0.25, torso_alpha=0.1))
    assert tight.pckh == pytest.approx(9 / 17)  # 5 px: the 8 shifted keypoints miss
    assert tight.pck_torso == pytest.approx(9 / 17)
    assert m.nme is None  # no eye corners in COCO-17

    face = get_schema("face68")
    fg = np.zeros((68, 3))
    fg[:, 0], fg[:, 1], fg[:, 2] = np.linspace(100, 300, 68), 200, 2
    fg[36, :2], fg[45, :2] = [150, 180], [250, 180]  # inter-ocular distance 100 px
    fp = fg.copy()
    fp[:, 1] += 2  # every landmark 2 px off
    m = evaluate(_dataset([fg], face, boxes=[[90, 150, 220, 100]]), [_result(fp)])
    assert m.nme == pytest.approx(0.02)


def test_per_keypoint_ap_is_coco_ap_on_that_keypoint_alone() -> None:
    gt, res = random_problem(np.random.default_rng(11), k=5)
    sigmas = [0.03, 0.05, 0.07, 0.09, 0.11]
    from posekit.data.coco import parse_coco

    g = GroundTruth.from_dataset(
        parse_coco(copy.deepcopy(gt), file="gt", image_root=None, repair=False)
    )
    ours = per_keypoint_ap(g, Predictions.from_coco_results(copy.deepcopy(res), g), sigmas=sigmas)[
        1
    ]
    for j in range(5):
        g1, r1 = copy.deepcopy(gt), copy.deepcopy(res)
        for a in g1["annotations"]:
            a["keypoints"] = a["keypoints"][3 * j : 3 * j + 3]
            a["num_keypoints"] = int(a["keypoints"][2] > 0)
        for c in g1["categories"]:
            c["keypoints"] = [c["keypoints"][j]]
        for r in r1:  # keep the full-pose area: pycocotools derives it from all keypoints
            xs, ys = r["keypoints"][0::3], r["keypoints"][1::3]
            r["bbox"] = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            r["keypoints"] = r["keypoints"][3 * j : 3 * j + 3]
        ref = pycocotools_stats(g1, r1, [sigmas[j]])[0]
        assert ours[j] == pytest.approx(ref, abs=1e-9), j


def test_to_dict_has_the_ten_statistics_by_name() -> None:
    schema = KeypointSchema.create("thing", ["a", "b"])
    g = np.array([[10, 10, 2], [20, 10, 2]], float)
    d = evaluate(_dataset([g], schema), [_result(np.c_[g[:, :2], [1, 1]])]).to_dict()
    for name in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"):
        assert name in d
    # perfect predictions: precision is tp / (tp + fp + eps), as in pycocotools
    assert d["AP"] == pytest.approx(1.0, abs=1e-12) and d["PCK@0.05"] == 1.0
    assert d["per_keypoint"]["a"]["AP"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("known", "asked"), [([], [9]), ([1, 3], [3, 9])])
def test_array_predictions_for_unknown_images_are_refused(
    known: list[int], asked: list[int]
) -> None:
    from posekit.data.problems import DatasetError

    gt = GroundTruth(np.array(known, dtype=np.int64), {})
    n = len(asked)
    with pytest.raises(DatasetError, match="unknown image_id 9"):
        Predictions.from_arrays(gt, 1, np.array(asked), np.zeros((n, 2, 3)), np.full(n, 0.5))
