"""COCO keypoint evaluation speed: posekit vs pycocotools vs faster-coco-eval, in one run.

Builds a synthetic problem (default 5,000 images, 1-10 people each, 20 detections per image,
COCO-17, some crowds and unlabelled people), checks that the three agree on all ten statistics,
and prints times and ratios. Two timings per tool: evaluate + accumulate + summarize on results
already loaded, and the same plus loading the results list (pycocotools' `loadRes`). Then it
evaluates a 10x larger problem with posekit alone in a child process and reports its peak RSS.

    python benchmarks/eval_speed.py [--images 5000] [--big 50000]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

from posekit.data.coco import parse_coco
from posekit.eval import GroundTruth, Predictions, evaluate_coco
from posekit.eval.cocoeval import STAT_NAMES
from posekit.schema.presets import COCO17_KEYPOINTS, COCO17_SKELETON_1BASED

K = 17


def make_arrays(n_images: int, seed: int) -> dict[str, np.ndarray]:
    """Ground truth and 20 detections per image as arrays (vectorised generation)."""
    rng = np.random.default_rng(seed)
    n_gt = rng.integers(1, 11, n_images)
    gt_img = np.repeat(np.arange(1, n_images + 1), n_gt)
    g = len(gt_img)
    size = np.exp(rng.uniform(np.log(20), np.log(300), g))
    centre = rng.uniform([50, 50], [590, 430], (g, 2))
    gkp = np.zeros((g, K, 3))
    gkp[..., :2] = centre[:, None, :] + rng.normal(0, 0.3, (g, K, 2)) * size[:, None, None]
    gkp[..., 2] = rng.choice([0, 1, 2], (g, K), p=[0.2, 0.2, 0.6])
    gkp[rng.random(g) < 0.05, :, 2] = 0  # people with no labelled keypoint
    gkp[gkp[..., 2] == 0, :2] = 0
    crowd = rng.random(g) < 0.01
    bbox = np.c_[centre - size[:, None] / 2, size, size * rng.uniform(0.5, 2, g)]
    area = bbox[:, 2] * bbox[:, 3] * rng.uniform(0.4, 1.0, g)
    # 20 detections per image: noisy copies of the people, then random false positives
    det_img, det_kp = [], []
    per_img_start = np.r_[0, np.cumsum(n_gt)[:-1]]
    src = np.concatenate(
        [s + rng.permutation(n)[: min(n, 20)] for s, n in zip(per_img_start, n_gt, strict=True)]
    )
    src_img = gt_img[src]
    noise = (
        rng.normal(0, 1, (len(src), K, 2))
        * (size[src] * rng.uniform(0.005, 0.06, len(src)))[:, None, None]
    )
    kp = np.zeros((len(src), K, 3))
    base = np.where(gkp[src, :, 2:3] > 0, gkp[src, :, :2], centre[src][:, None, :])
    kp[..., :2] = base + noise
    kp[..., 2] = rng.random((len(src), K))
    det_img.append(src_img)
    det_kp.append(kp)
    n_fp = 20 - np.minimum(n_gt, 20)
    fp_img = np.repeat(np.arange(1, n_images + 1), n_fp)
    fp = np.zeros((len(fp_img), K, 3))
    fp[..., :2] = rng.uniform([0, 0], [640, 480], (len(fp_img), 2))[:, None, :] + rng.normal(
        0, 30, (len(fp_img), K, 2)
    )
    fp[..., 2] = rng.random((len(fp_img), K))
    det_img.append(fp_img)
    det_kp.append(fp)
    det_img_a = np.concatenate(det_img)
    order = np.argsort(det_img_a, kind="stable")
    score = np.round(rng.random(len(order)), 3)  # rounded: tied scores happen
    return {
        "gt_img": gt_img,
        "gt_kp": gkp,
        "bbox": bbox,
        "area": area,
        "crowd": crowd,
        "det_img": det_img_a[order],
        "det_kp": np.concatenate(det_kp)[order],
        "score": score,
    }


def to_coco(a: dict[str, np.ndarray], n_images: int) -> tuple[dict[str, Any], list[dict]]:
    images = [
        {"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480}
        for i in range(1, n_images + 1)
    ]
    vis = a["gt_kp"][..., 2] > 0
    anns = [
        {
            "id": j + 1,
            "image_id": int(a["gt_img"][j]),
            "category_id": 1,
            "keypoints": a["gt_kp"][j].ravel().tolist(),
            "num_keypoints": int(vis[j].sum()),
            "bbox": a["bbox"][j].tolist(),
            "area": float(a["area"][j]),
            "iscrowd": int(a["crowd"][j]),
        }
        for j in range(len(a["gt_img"]))
    ]
    cats = [
        {
            "id": 1,
            "name": "person",
            "keypoints": list(COCO17_KEYPOINTS),
            "skeleton": [list(e) for e in COCO17_SKELETON_1BASED],
        }
    ]
    results = [
        {
            "image_id": int(a["det_img"][j]),
            "category_id": 1,
            "keypoints": a["det_kp"][j].ravel().tolist(),
            "score": float(a["score"][j]),
        }
        for j in range(len(a["det_img"]))
    ]
    return {"images": images, "annotations": anns, "categories": cats}, results


def run_pycocotools(
    gt_dict: dict, results: list[dict], faster: bool
) -> tuple[np.ndarray, float, float]:
    if faster:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    else:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(gt_dict)
        gt.createIndex()
        res = copy.deepcopy(results)
        t0 = time.perf_counter()
        dt = gt.loadRes(res)
        t1 = time.perf_counter()
        e = Eval(gt, dt, "keypoints")
        e.evaluate()
        e.accumulate()
        e.summarize()
        t2 = time.perf_counter()
    return np.array(e.stats[:10]), t2 - t1, t2 - t0


def run_posekit(gt_dict: dict, results: list[dict]) -> tuple[np.ndarray, float, float]:
    gt = GroundTruth.from_dataset(parse_coco(gt_dict, file="gt", image_root=None, repair=False))
    t0 = time.perf_counter()
    pred = Predictions.from_coco_results(results, gt)
    t1 = time.perf_counter()
    stats = evaluate_coco(gt, pred).stats
    t2 = time.perf_counter()
    return np.array([stats[n] for n in STAT_NAMES]), t2 - t1, t2 - t0


def big_run(n_images: int) -> None:
    """posekit alone on a large problem from arrays; prints time and peak RSS as JSON."""
    from posekit.eval.inputs import CategoryGT
    from posekit.schema import get_schema

    a = make_arrays(n_images, seed=1)
    image_ids = np.arange(1, n_images + 1)
    g = len(a["gt_img"])
    cat = CategoryGT(
        1,
        get_schema("coco17"),
        a["gt_img"] - 1,
        np.arange(1, g + 1),
        a["gt_kp"],
        a["bbox"],
        a["area"],
        a["crowd"],
        (a["gt_kp"][..., 2] > 0).sum(1),
        np.full(g, np.nan),
    )
    gt = GroundTruth(image_ids, {1: cat})
    t0 = time.perf_counter()
    pred = Predictions.from_arrays(gt, 1, a["det_img"], a["det_kp"], a["score"])
    stats = evaluate_coco(gt, pred).stats
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(
        json.dumps(
            {
                "images": n_images,
                "gt": g,
                "dets": len(a["det_img"]),
                "seconds": dt,
                "peak_rss_mib": rss,
                "AP": stats["AP"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--big", type=int, default=50000, help="0 to skip the memory run")
    parser.add_argument("--big-run", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.big_run:
        big_run(args.big_run)
        return
    a = make_arrays(args.images, seed=0)
    gt_dict, results = to_coco(a, args.images)
    print(
        f"problem: {args.images} images, {len(gt_dict['annotations'])} people, "
        f"{len(results)} detections, COCO-17"
    )
    runs = {
        "pycocotools": run_pycocotools(gt_dict, results, faster=False),
        "faster-coco-eval": run_pycocotools(gt_dict, results, faster=True),
        "posekit": run_posekit(gt_dict, results),
    }
    ref = runs["pycocotools"][0]
    print(f"{'tool':<18}{'eval s':>9}{'+load s':>9}   max |stat - pycocotools|")
    for name, (stats, t_eval, t_all) in runs.items():
        print(f"{name:<18}{t_eval:>9.3f}{t_all:>9.3f}   {np.abs(stats - ref).max():.2e}")
    print(
        "stats (pycocotools): "
        + ", ".join(f"{n}={v:.4f}" for n, v in zip(STAT_NAMES, ref, strict=True))
    )
    ours = runs["posekit"]
    for name in ("pycocotools", "faster-coco-eval"):
        other = runs[name]
        print(
            f"posekit vs {name}: {other[1] / ours[1]:.1f}x faster (evaluate+accumulate+"
            f"summarize), {other[2] / ours[2]:.1f}x with loading the results"
        )
    agree = all(np.abs(r[0] - ref).max() <= 1e-9 for r in runs.values())
    print(f"all three agree to 1e-9: {agree}")
    if args.big:
        out = subprocess.run(
            [sys.executable, __file__, "--big-run", str(args.big)],
            capture_output=True,
            text=True,
            check=True,
        )
        big = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"posekit alone on {big['images']} images ({big['gt']} people, {big['dets']} "
            f"detections, from arrays): {big['seconds']:.1f} s, peak RSS "
            f"{big['peak_rss_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
