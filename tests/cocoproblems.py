"""Random COCO keypoint problems and a pycocotools reference run, shared by the eval tests."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np

from posekit.data.coco import parse_coco
from posekit.eval import EvalParams, GroundTruth, Predictions, evaluate_coco
from posekit.eval.cocoeval import STAT_NAMES


def random_problem(
    rng: np.random.Generator,
    *,
    n_images: int = 30,
    k: int = 17,
    n_cats: int = 1,
    crowd_p: float = 0.1,
    zero_kpt_p: float = 0.1,
    extra_dets: int = 25,
    score_decimals: int = 1,
    with_bbox: bool = False,
    gt_id_start: int = 1,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth with crowds, people without labelled keypoints, empty images, and detections
    with tied scores, more than maxDets per image, and images with no detection at all."""
    images = [
        {"id": 3 * i + 1, "file_name": f"{i}.jpg", "width": 640, "height": 480}
        for i in range(n_images)
    ]
    cats = [
        {"id": c + 1, "name": f"c{c}", "keypoints": [f"k{j}" for j in range(k)], "skeleton": []}
        for c in range(n_cats)
    ]
    anns: list[dict[str, Any]] = []
    res: list[dict[str, Any]] = []
    for im in images:
        if rng.random() < 0.15:
            continue  # no ground truth and no detection
        for c in range(n_cats):
            for _ in range(int(rng.integers(0, 6))):
                cx, cy, s = rng.uniform(50, 590), rng.uniform(50, 430), rng.uniform(10, 150)
                kp = np.zeros((k, 3))
                kp[:, 0] = cx + rng.normal(0, s / 3, k)
                kp[:, 1] = cy + rng.normal(0, s / 3, k)
                kp[:, 2] = rng.choice([0, 1, 2], k, p=[0.3, 0.2, 0.5])
                if rng.random() < zero_kpt_p:
                    kp[:, 2] = 0
                kp[kp[:, 2] == 0, :2] = 0
                bb = [cx - s / 2, cy - s / 2, s, s * rng.uniform(0.5, 2)]
                anns.append(
                    {
                        "id": gt_id_start + len(anns),
                        "image_id": im["id"],
                        "category_id": c + 1,
                        "keypoints": kp.ravel().tolist(),
                        "num_keypoints": int((kp[:, 2] > 0).sum()),
                        "bbox": bb,
                        "area": float(bb[2] * bb[3] * rng.uniform(0.3, 1)),
                        "iscrowd": int(rng.random() < crowd_p),
                    }
                )
                for _ in range(int(rng.integers(0, 4))):
                    noise = rng.uniform(0.5, 15)
                    dk = np.zeros((k, 3))
                    ref = (
                        kp[:, :2]
                        if kp[:, 2].any()
                        else np.array([cx, cy]) + rng.normal(0, s, (k, 2))
                    )
                    dk[:, :2] = ref + rng.normal(0, noise, (k, 2))
                    dk[:, 2] = rng.random(k)
                    res.append(_det(im["id"], c + 1, dk, rng, score_decimals, with_bbox))
            for _ in range(int(rng.integers(0, extra_dets))):
                dk = np.ones((k, 3))
                dk[:, 0], dk[:, 1] = rng.uniform(0, 640, k), rng.uniform(0, 480, k)
                res.append(_det(im["id"], c + 1, dk, rng, score_decimals, with_bbox))
    return {"images": images, "annotations": anns, "categories": cats}, res


def _det(
    iid: int, cid: int, dk: np.ndarray, rng: np.random.Generator, decimals: int, with_bbox: bool
) -> dict[str, Any]:
    d = {
        "image_id": iid,
        "category_id": cid,
        "keypoints": dk.ravel().tolist(),
        "score": float(np.round(rng.random(), decimals)),
    }
    if with_bbox:
        x0, y0 = dk[:, 0].min(), dk[:, 1].min()
        d["bbox"] = [x0, y0, rng.uniform(5, 200), rng.uniform(5, 200)]
    return d


def pycocotools_stats(
    gt: dict, res: list, sigmas: list[float], *, max_dets: int = 20, area_ranges: list | None = None
) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(gt)
        g.createIndex()
        d = g.loadRes(copy.deepcopy(res))
        e = COCOeval(g, d, "keypoints")
        e.params.kpt_oks_sigmas = np.array(sigmas)
        e.params.maxDets = [max_dets]
        if area_ranges is not None:
            e.params.areaRng = [list(a[1:]) for a in area_ranges]
            e.params.areaRngLbl = [a[0] for a in area_ranges]
        e.evaluate()
        e.accumulate()
        if max_dets == 20 and area_ranges is None:
            e.summarize()
            return np.array(e.stats)
    # pycocotools' summarize() hard-codes maxDets=20 and its area labels: apply its
    # _summarize logic to the custom settings instead
    return _summarize_like_pycocotools(e)


def _summarize_like_pycocotools(e: Any) -> np.ndarray:
    p = e.params
    out = []
    for ap, iou, area in [
        (1, None, "all"),
        (1, 0.5, "all"),
        (1, 0.75, "all"),
        (1, None, "medium"),
        (1, None, "large"),
        (0, None, "all"),
        (0, 0.5, "all"),
        (0, 0.75, "all"),
        (0, None, "medium"),
        (0, None, "large"),
    ]:
        if area not in p.areaRngLbl:
            out.append(-1.0)
            continue
        a = p.areaRngLbl.index(area)
        s = e.eval["precision"] if ap else e.eval["recall"]
        if iou is not None:
            s = s[np.where(iou == p.iouThrs)[0]]
        s = s[:, :, :, a, 0] if ap else s[:, :, a, 0]
        out.append(np.mean(s[s > -1]) if len(s[s > -1]) else -1)
    return np.array(out, dtype=float)


def posekit_stats(
    gt: dict, res: list, sigmas: list[float], *, max_dets: int = 20, area_ranges: list | None = None
) -> np.ndarray:
    ds = parse_coco(copy.deepcopy(gt), file="gt", image_root=None, repair=False)
    g = GroundTruth.from_dataset(ds)
    p = Predictions.from_coco_results(copy.deepcopy(res), g)
    params = EvalParams(max_dets=max_dets)
    if area_ranges is not None:
        params = EvalParams(max_dets=max_dets, area_ranges=tuple(tuple(a) for a in area_ranges))
    stats = evaluate_coco(g, p, params=params, sigmas=sigmas).stats
    return np.array([stats[n] for n in STAT_NAMES])
